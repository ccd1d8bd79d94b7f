package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumedRecord is one line of `consume --meta`.
type consumedRecord struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key"`
	Value     json.RawMessage   `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
	Timestamp int64             `json:"timestamp_ms"`
}

func cmdConsume(ctx context.Context, env *environment, args []string) error {
	var meta bool
	var max int
	var idle time.Duration
	var fromEnd bool
	s := newSetup(env, "consume", "consume output|dlq|input|scores|table [flags]")
	fs := s.fs
	fs.BoolVar(&meta, "meta", false, "print each record with topic, partition, offset, key and headers")
	fs.IntVar(&max, "max", 0, "stop after this many records (0: no limit)")
	fs.DurationVar(&idle, "idle", 0, "stop when no record arrived for this long (0: follow until interrupted)")
	fs.BoolVar(&fromEnd, "from-end", false, "start at the end instead of the beginning")
	role, rest, err := subcommand(fs, args, "output", "dlq", "input", "scores", "table")
	if err != nil {
		return err
	}
	if err := s.parse(rest, 0); err != nil {
		return err
	}
	kc, topics := s.kc, s.topics
	topic := map[string]string{"output": topics.Output, "dlq": topics.DLQ(), "input": topics.Input,
		"scores": topics.Scores, "table": topics.Table()}[role]
	if max < 0 || idle < 0 {
		return usagef("--max and --idle must not be negative")
	}
	start := kgo.NewOffset().AtStart()
	if fromEnd {
		start = kgo.NewOffset().AtEnd()
	}
	// Read committed: an exactly-once job's outputs show once their transaction commits, and
	// those of aborted transactions never; a topic written without transactions reads the same.
	cl, err := kc.Client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	defer cl.Close()

	enc := json.NewEncoder(env.stdout)
	n := 0
	for {
		fctx, cancel := ctx, context.CancelFunc(func() {})
		if idle > 0 {
			fctx, cancel = context.WithTimeout(ctx, idle)
		}
		fetches := cl.PollFetches(fctx)
		cancel()
		if ctx.Err() != nil || (idle > 0 && fctx.Err() != nil && fetches.NumRecords() == 0) {
			return nil
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				return fmt.Errorf("consume %s: %w", topic, fe.Err)
			}
		}
		for _, r := range fetches.Records() {
			if err := printRecord(env, enc, r, meta); err != nil {
				return err
			}
			n++
			if max > 0 && n >= max {
				return nil
			}
		}
	}
}

func printRecord(env *environment, enc *json.Encoder, r *kgo.Record, meta bool) error {
	value := json.RawMessage("null")
	if r.Value != nil {
		if json.Valid(r.Value) {
			value = r.Value
		} else {
			b, _ := json.Marshal(string(r.Value))
			value = b
		}
	}
	if !meta {
		_, err := fmt.Fprintf(env.stdout, "%s\n", compact(value))
		return err
	}
	cr := consumedRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: value,
		Timestamp: r.Timestamp.UnixMilli()}
	if len(r.Headers) > 0 {
		cr.Headers = map[string]string{}
		for _, h := range r.Headers {
			cr.Headers[h.Key] = string(h.Value)
		}
	}
	return enc.Encode(cr)
}

func compact(v json.RawMessage) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return v
	}
	return buf.Bytes()
}
