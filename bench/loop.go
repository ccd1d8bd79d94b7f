package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/kafkaconf"
)

// runLoop is the raw-client ceiling, run as `bench loop`: the whole scores topic read into a
// Go map (and kept current by a second client), then consume input -> decode -> look up ->
// encode -> produce with franz-go in a consumer group, with the same JSON codecs enricher uses.
// It keeps no state in Kafka: a restart reads the scores topic again.
func runLoop(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loop", flag.ContinueOnError)
	var brokers, group, input, scoresTopic, output string
	fs.StringVar(&brokers, "brokers", "", "Kafka brokers")
	fs.StringVar(&group, "group", "", "consumer group of the input topic")
	fs.StringVar(&input, "input", "", "input topic")
	fs.StringVar(&scoresTopic, "scores", "", "scores topic")
	fs.StringVar(&output, "output", "", "output topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if brokers == "" || group == "" || input == "" || scoresTopic == "" || output == "" {
		return errors.New("loop: --brokers, --group, --input, --scores and --output are required")
	}
	kc := kafkaconf.Defaults()
	kc.Brokers = strings.Split(brokers, ",")
	kc.ClientID = "enricher-bench-loop"

	table := &scoreMap{m: map[string]int64{}}
	bounds, err := table.load(ctx, kc, scoresTopic)
	if err != nil {
		return err
	}
	next := map[int32]kgo.Offset{}
	for p, b := range bounds {
		next[p] = kgo.NewOffset().At(b.End)
	}
	sc, err := kc.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{scoresTopic: next}), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		return err
	}
	defer sc.Close()
	scoreErr := make(chan error, 1)
	go func() { scoreErr <- table.follow(ctx, sc) }()

	cl, err := kc.Client(kgo.ConsumerGroup(group), kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()               // leaves the group and commits what was polled
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
			out := codecs.Output{Key: in.Key, Message: in.Message, Score: table.get(in.Key)}
			v, err := codecs.Encode(out)
			if err != nil {
				perr.CompareAndSwap(nil, &err)
				return
			}
			rec := &kgo.Record{Topic: output, Key: r.Key, Value: v, Partition: r.Partition}
			cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					perr.CompareAndSwap(nil, &err)
				}
			})
		})
		if p := perr.Load(); p != nil {
			return *p
		}
		select {
		case err := <-scoreErr:
			return err
		default:
		}
	}
	return cl.Flush(context.Background())
}

// scoreMap is the loop's table: the latest score per key.
type scoreMap struct {
	mu sync.RWMutex
	m  map[string]int64
}

func (s *scoreMap) get(key string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if v, ok := s.m[key]; ok {
		return v
	}
	return codecs.NoScore
}

func (s *scoreMap) apply(r *kgo.Record) error {
	sc, err := codecs.DecodeScore(string(r.Key), r.Value)
	if err != nil {
		return fmt.Errorf("score %q: %w", r.Key, err)
	}
	s.mu.Lock()
	s.m[sc.Key] = sc.Score
	s.mu.Unlock()
	return nil
}

// load reads the scores topic from the start up to its end offsets as of now, with the
// project's changelog reader, and returns those offsets.
func (s *scoreMap) load(ctx context.Context, kc kafkaconf.Config, topic string) (map[int32]changelog.Bounds, error) {
	adm, err := kc.Admin()
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	var aerr error
	bounds, err := changelog.ReadTopic(ctx, kc, adm, topic, nil, nil, func(r *kgo.Record) {
		if err := s.apply(r); err != nil && aerr == nil {
			aerr = err
		}
	})
	if err != nil {
		return nil, err
	}
	return bounds, aerr
}

// follow applies the scores written after load, until ctx ends.
func (s *scoreMap) follow(ctx context.Context, cl *kgo.Client) error {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return errs[0].Err
		}
		var aerr error
		fs.EachRecord(func(r *kgo.Record) {
			if err := s.apply(r); err != nil && aerr == nil {
				aerr = err
			}
		})
		if aerr != nil {
			return aerr
		}
	}
}
