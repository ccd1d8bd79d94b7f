package consumergroup

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// BenchmarkMerge is the merger's cost per record: two claims' records, interleaved in time,
// through the merge to a reader; BenchmarkPassThrough is the goroutine hop alone, for scale.
func BenchmarkMerge(b *testing.B) {
	in, sc := newFakeClaim("input"), newFakeClaim("scores")
	in.msgs, sc.msgs = make(chan *sarama.ConsumerMessage, 256), make(chan *sarama.ConsumerMessage, 256)
	out := make(chan *sarama.ConsumerMessage, 256)
	m := newMerger([]sarama.ConsumerGroupClaim{in, sc}, []int64{0, 0}, "scores", 0, time.Second, NewStats().Partition(3),
		slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.run(ctx, out, nil)
	go feedAlternating(b.N, in, sc)
	b.ResetTimer()
	for range b.N {
		<-out
	}
}

func BenchmarkPassThrough(b *testing.B) {
	in := make(chan *sarama.ConsumerMessage, 256)
	out := make(chan *sarama.ConsumerMessage, 256)
	go func() {
		for m := range in {
			out <- m
		}
	}()
	go func() {
		base := time.UnixMilli(1_700_000_000_000)
		for i := range b.N {
			in <- &sarama.ConsumerMessage{Offset: int64(i), Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
		}
		close(in)
	}()
	b.ResetTimer()
	for range b.N {
		<-out
	}
}

// feedAlternating sends n records, alternating between the claims, with rising timestamps.
func feedAlternating(n int, in, sc *fakeClaim) {
	base := time.UnixMilli(1_700_000_000_000)
	for i := range n {
		c := in
		if i%2 == 1 {
			c = sc
		}
		c.next++
		c.hwm.Store(c.next)
		c.msgs <- &sarama.ConsumerMessage{Topic: c.topic, Offset: c.next - 1, Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
	}
}
