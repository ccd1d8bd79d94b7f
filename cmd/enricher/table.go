package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/changelog"
)

func cmdTable(ctx context.Context, env *environment, args []string) error {
	var logs logFlags
	var timeout time.Duration
	s := newSetup(env, "table", "table get KEY | table dump  (the table's committed records, read from its changelog)")
	fs := s.fs
	logs.register(fs)
	fs.DurationVar(&timeout, "timeout", 2*time.Minute, "how long reading the table may take")
	action, rest, err := subcommand(fs, args, "get", "dump")
	if err != nil {
		return err
	}
	var key string
	if action == "get" {
		if key, rest, err = positional(rest, "table get", "KEY"); err != nil {
			return err
		}
	}
	if err := s.parse(rest, 0); err != nil {
		return err
	}
	if _, err := logs.logger(env.stderr); err != nil {
		return err
	}
	kc, topics := s.kc, s.topics
	adm, err := s.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bounds, err := changelog.Offsets(ctx, adm, topics.Table())
	if err != nil {
		return err
	}
	if action == "get" {
		// The key's partition by the configured scheme: where the processor looks it up.
		p := kc.Partitioner.Partition([]byte(key), int32(len(bounds)))
		b := bounds[p]
		var value []byte
		err := changelog.ReadPartition(ctx, kc, topics.Table(), p, b.Start, b.End, func(rs []*kgo.Record, _ int64) error {
			for _, r := range rs {
				if string(r.Key) == key {
					value = r.Value
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", topics.Table(), p, tableErr(ctx, err, timeout))
		}
		if value == nil {
			return fmt.Errorf("key %q has no score", key)
		}
		v, err := codecs.ScoreCodec{}.Decode(value)
		if err != nil {
			return fmt.Errorf("table value of %q: %w", key, err)
		}
		return json.NewEncoder(env.stdout).Encode(codecs.Score{Key: key, Score: v.(codecs.Score).Score})
	}
	table, err := changelog.Read(ctx, kc, adm, topics.Table(), nil, nil)
	if err != nil {
		return fmt.Errorf("read %s: %w", topics.Table(), tableErr(ctx, err, timeout))
	}
	return dumpTable(env.stdout, table)
}

// tableErr names the timeout when it ended a read.
func tableErr(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("not read within --timeout %s: %w", timeout, err)
	}
	return err
}
