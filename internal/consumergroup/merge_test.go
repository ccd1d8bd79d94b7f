package consumergroup

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// fakeClaim is a claim whose records a test sends and whose high-water mark it sets.
type fakeClaim struct {
	topic string
	msgs  chan *sarama.ConsumerMessage
	hwm   atomic.Int64
	next  int64
}

func newFakeClaim(topic string) *fakeClaim {
	return &fakeClaim{topic: topic, msgs: make(chan *sarama.ConsumerMessage, 64)}
}

func (c *fakeClaim) Topic() string                            { return c.topic }
func (c *fakeClaim) Partition() int32                         { return 3 }
func (c *fakeClaim) InitialOffset() int64                     { return 0 }
func (c *fakeClaim) HighWaterMarkOffset() int64               { return c.hwm.Load() }
func (c *fakeClaim) Messages() <-chan *sarama.ConsumerMessage { return c.msgs }

// send delivers a record stamped ms milliseconds after a fixed time (ms < 0: no timestamp).
func (c *fakeClaim) send(ms int) {
	ts := time.Time{}
	if ms >= 0 {
		ts = time.UnixMilli(1_700_000_000_000 + int64(ms))
	}
	c.msgs <- &sarama.ConsumerMessage{Topic: c.topic, Partition: 3, Offset: c.next, Timestamp: ts}
	c.next++
	if c.hwm.Load() < c.next {
		c.hwm.Store(c.next)
	}
}

type mergeRun struct {
	out   chan *sarama.ConsumerMessage
	stats *PartitionStats
	stop  context.CancelFunc
	ended chan struct{}
}

func startMerge(t *testing.T, maxIdle, lagWait time.Duration, claims ...*fakeClaim) *mergeRun {
	t.Helper()
	cs := make([]sarama.ConsumerGroupClaim, len(claims))
	next := make([]int64, len(claims))
	for i, c := range claims {
		cs[i] = c
	}
	r := &mergeRun{out: make(chan *sarama.ConsumerMessage, 1000), stats: NewStats().Partition(3), ended: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	m := newMerger(cs, next, "scores", maxIdle, lagWait, r.stats, slog.New(slog.DiscardHandler))
	go func() { defer close(r.ended); m.run(ctx, r.out, nil) }()
	t.Cleanup(func() { cancel(); <-r.ended })
	return r
}

// take returns the next n merged records as topic:ms strings, failing after a second.
func (r *mergeRun) take(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case m := <-r.out:
			ms := int64(-1)
			if !missingTimestamp(m.Timestamp) {
				ms = m.Timestamp.UnixMilli() - 1_700_000_000_000
			}
			got = append(got, m.Topic[:1]+":"+strconv.FormatInt(ms, 10))
		case <-time.After(time.Second):
			t.Fatalf("got %v, want %d records", got, n)
		}
	}
	return got
}

func (r *mergeRun) none(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case m := <-r.out:
		t.Fatalf("record %s/%d handed on, want it held back", m.Topic, m.Offset)
	case <-time.After(within):
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMergeBufferedInTimestampOrder(t *testing.T) {
	in, sc := newFakeClaim("input"), newFakeClaim("scores")
	for _, ms := range []int{1, 4, 6, 9} {
		in.send(ms)
	}
	for _, ms := range []int{0, 4, 5, 10} {
		sc.send(ms)
	}
	r := startMerge(t, 0, time.Second, in, sc)
	want := []string{"s:0", "i:1", "s:4", "i:4", "s:5", "i:6", "i:9", "s:10"}
	if got := r.take(t, len(want)); !equal(got, want) {
		t.Fatalf("merged %v, want %v", got, want)
	}
}

// The backfill race: inputs fetched before the scores that precede them on the broker.
func TestMergeWaitsForRecordsOnTheBroker(t *testing.T) {
	in, sc := newFakeClaim("input"), newFakeClaim("scores")
	sc.hwm.Store(2) // two scores on the broker, not fetched yet
	in.send(5)
	in.send(20)
	r := startMerge(t, 0, 5*time.Second, in, sc)
	r.none(t, 100*time.Millisecond)
	if w := r.stats.Waiting(); w == nil || w.Topic != "scores" || !w.Lag {
		t.Fatalf("waiting = %+v, want a lag wait for scores", w)
	}
	sc.send(3)
	sc.send(10)
	want := []string{"s:3", "i:5", "s:10", "i:20"}
	if got := r.take(t, len(want)); !equal(got, want) {
		t.Fatalf("merged %v, want %v", got, want)
	}
	if r.stats.Waits.Load() == 0 || r.stats.WaitNanos.Load() == 0 {
		t.Fatalf("waits %d, %d ns: want the wait counted", r.stats.Waits.Load(), r.stats.WaitNanos.Load())
	}
}

func TestMergeCaughtUpSideHoldsNothingBack(t *testing.T) {
	in, sc := newFakeClaim("input"), newFakeClaim("scores")
	r := startMerge(t, 0, 5*time.Second, in, sc)
	in.send(5)
	if got := r.take(t, 1); got[0] != "i:5" {
		t.Fatalf("merged %v", got)
	}
}

func TestMergeMaxIdleWaitsForProducers(t *testing.T) {
	in, sc := newFakeClaim("input"), newFakeClaim("scores")
	r := startMerge(t, 300*time.Millisecond, 5*time.Second, in, sc)
	began := time.Now()
	in.send(5)
	in.send(6)
	got := r.take(t, 2)
	if held := time.Since(began); held < 250*time.Millisecond {
		t.Fatalf("input handed on after %s, want it held about --max-idle", held)
	}
	if !equal(got, []string{"i:5", "i:6"}) || r.stats.IdleWaitsExpired.Load() != 1 {
		t.Fatalf("merged %v, idle waits expired %d", got, r.stats.IdleWaitsExpired.Load())
	}
	// The empty spell is over: the next input is not held again.
	in.send(7)
	began = time.Now()
	r.take(t, 1)
	if held := time.Since(began); held > 200*time.Millisecond {
		t.Fatalf("second input held %s in the same empty spell", held)
	}
	// A score ends the spell; a later gap in scores holds the next input again.
	sc.send(8)
	r.take(t, 1)
	in.send(9)
	r.none(t, 150*time.Millisecond)
	r.take(t, 1)
}

func TestMergeLagThatNeverArrives(t *testing.T) {
	in, sc := newFakeClaim("input"), newFakeClaim("scores")
	sc.hwm.Store(1) // e.g. a transaction marker: the mark stays above the last record
	r := startMerge(t, 0, 200*time.Millisecond, in, sc)
	in.send(5)
	r.take(t, 1)
	if r.stats.LagWaitsExpired.Load() != 1 {
		t.Fatalf("lag waits expired %d, want 1", r.stats.LagWaitsExpired.Load())
	}
}

func TestMergeMissingTimestampsInOffsetOrder(t *testing.T) {
	in, sc := newFakeClaim("input"), newFakeClaim("scores")
	in.send(-1)
	in.send(50)
	sc.send(10)
	r := startMerge(t, 0, time.Second, in, sc)
	want := []string{"i:-1", "s:10", "i:50"}
	if got := r.take(t, len(want)); !equal(got, want) {
		t.Fatalf("merged %v, want %v", got, want)
	}
	if r.stats.MissingTimestamps.Load() != 1 {
		t.Fatalf("missing timestamps %d, want 1", r.stats.MissingTimestamps.Load())
	}
}

func TestMergeEndsWhenClaimsClose(t *testing.T) {
	in, sc := newFakeClaim("input"), newFakeClaim("scores")
	r := startMerge(t, 0, time.Second, in, sc)
	close(in.msgs)
	close(sc.msgs)
	select {
	case <-r.ended:
	case <-time.After(time.Second):
		t.Fatal("merge still running after every claim closed")
	}
}

// A queue that never runs empty, as under a steady backlog, keeps a bounded array.
func TestFeedQueueStaysBounded(t *testing.T) {
	f := &feed{}
	for i := range 100 * queueMax {
		f.push(&sarama.ConsumerMessage{Offset: int64(i)})
		if i > 0 {
			f.pop()
		}
	}
	if !f.buffered() || f.queue[f.head].Offset != int64(100*queueMax-1) {
		t.Fatalf("the newest record is not the one buffered")
	}
	if cap(f.queue) > 4*queueMax {
		t.Fatalf("queue array grew to %d slots with one record buffered", cap(f.queue))
	}
}
