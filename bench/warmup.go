package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/kafkaconf"
)

// warmUp runs records through the broker for d before the first system is measured, on a topic
// of its own that it deletes after. A new broker's JVM compiles its produce and fetch paths in
// its first minutes of load, on the cores the systems share: whichever system ran first measured
// 15 to 30% slower than the same build later in the run (docs/performance.md, 2026-12-02).
func warmUp(ctx context.Context, kc kafkaconf.Config, topic string, partitions int, msgBytes int, d time.Duration) (int64, error) {
	cl, err := kc.Client(kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1<<16),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, int32(partitions), -1, nil, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("warm-up topic: %w", err)
	}
	defer func() { _, _ = adm.DeleteTopics(context.WithoutCancel(ctx), topic) }()

	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	value := make([]byte, msgBytes)
	produced := make(chan error, 1)
	go func() {
		var failed atomic.Pointer[error] // the first write that failed while the warm-up ran
		for i := 0; wctx.Err() == nil; i++ {
			r := &kgo.Record{Topic: topic, Partition: int32(i % partitions), Value: value}
			cl.Produce(wctx, r, func(_ *kgo.Record, err error) {
				if err != nil && wctx.Err() == nil {
					failed.CompareAndSwap(nil, &err)
				}
			})
		}
		_ = cl.Flush(context.WithoutCancel(ctx))
		if err := failed.Load(); err != nil {
			produced <- *err
			return
		}
		produced <- nil
	}()
	var read int64
	for wctx.Err() == nil {
		fs := cl.PollFetches(wctx)
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return read, fmt.Errorf("warm-up read: %w", err)
		}
		read += int64(fs.NumRecords())
	}
	if err := <-produced; err != nil {
		return read, fmt.Errorf("warm-up write: %w", err)
	}
	if ctx.Err() != nil {
		return read, ctx.Err()
	}
	return read, nil
}
