package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/processor"
	"github.com/enricher/enricher/topology"
)

func cmdTable(ctx context.Context, env *environment, args []string) error {
	var jf jobFlags
	var logs logFlags
	var timeout time.Duration
	fs := newFlags("table", "table get KEY | table dump  (through a goka view of the table)", env.stderr)
	jf.register(fs)
	logs.register(fs)
	fs.DurationVar(&timeout, "timeout", 2*time.Minute, "how long the view may take to recover the table")
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
	if err := parse(fs, rest); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	log, err := logs.logger(env.stderr)
	if err != nil {
		return err
	}
	kc, topics, err := jf.resolve()
	if err != nil {
		return err
	}
	adm, err := kc.Admin()
	if err != nil {
		return err
	}
	partitions, err := topology.PartitionCount(ctx, adm, topics.Table())
	adm.Close()
	if err != nil {
		return err
	}
	view, err := processor.NewTableView(kc, topics, partitions, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-view.WaitRunning():
	case err := <-done:
		return fmt.Errorf("table view stopped: %w", err)
	case <-time.After(timeout):
		return fmt.Errorf("table view did not recover %s within %s", topics.Table(), timeout)
	case <-ctx.Done():
		return ctx.Err()
	}

	enc := json.NewEncoder(env.stdout)
	if action == "get" {
		v, err := view.Get(key)
		if err != nil {
			return fmt.Errorf("get %q: %w", key, err)
		}
		if v == nil {
			return fmt.Errorf("key %q has no score", key)
		}
		s := v.(codecs.Score)
		return enc.Encode(codecs.Score{Key: key, Score: s.Score})
	}
	it, err := view.Iterator()
	if err != nil {
		return fmt.Errorf("iterate %s: %w", topics.Table(), err)
	}
	defer it.Release()
	for it.Next() {
		v, err := it.Value()
		if err != nil {
			return fmt.Errorf("value of %q: %w", it.Key(), err)
		}
		s, ok := v.(codecs.Score)
		if !ok {
			continue
		}
		if err := enc.Encode(codecs.Score{Key: it.Key(), Score: s.Score}); err != nil {
			return err
		}
	}
	return it.Err()
}
