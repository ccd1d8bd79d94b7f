package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/changelog"
	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/kafkaconf"
	"github.com/enricher/enricher/topology"
)

// franzLoop is the raw-client ceiling: the scores read into a map, then consume input ->
// decode -> look up -> encode -> produce with franz-go, with the same JSON codecs enricher uses.
func franzLoop(ctx context.Context, kc kafkaconf.Config, topics topology.Topics, o options) error {
	adm, err := kc.Admin()
	if err != nil {
		return err
	}
	parts, err := changelog.Read(ctx, kc, adm, topics.Scores, nil, nil)
	adm.Close()
	if err != nil {
		return err
	}
	scores := map[string]int64{}
	for _, t := range parts {
		for k, v := range t {
			s, err := codecs.DecodeScore(k, v)
			if err != nil {
				return fmt.Errorf("score %q: %w", k, err)
			}
			scores[k] = s.Score
		}
	}
	cl, err := kc.Client(kgo.ConsumeTopics(topics.Input), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	var perr atomic.Pointer[error] // set by produce callbacks, on another goroutine
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 && ctx.Err() == nil {
			return errs[0].Err
		}
		fs.EachRecord(func(r *kgo.Record) {
			in, err := codecs.DecodeInput(string(r.Key), r.Value)
			if err != nil {
				perr.CompareAndSwap(nil, &err)
				return
			}
			out := codecs.Output{Key: in.Key, Message: in.Message, Score: codecs.NoScore}
			if s, ok := scores[in.Key]; ok {
				out.Score = s
			}
			v, err := codecs.Encode(out)
			if err != nil {
				perr.CompareAndSwap(nil, &err)
				return
			}
			rec := &kgo.Record{Topic: topics.Output, Key: r.Key, Value: v}
			kc.PartitionRecord(rec, int32(o.partitions))
			cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					perr.CompareAndSwap(nil, &err)
				}
			})
		})
		if p := perr.Load(); p != nil {
			return *p
		}
	}
	return ctx.Err()
}
