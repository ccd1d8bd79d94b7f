package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/savepoint"
	"github.com/enricher/enricher/internal/scratch"
	"github.com/enricher/enricher/internal/store"
)

func cmdReplay(ctx context.Context, env *environment, args []string) error {
	var dump bool
	var rebuild, until string
	s := newSetup(env, "replay", "replay --dump [FILE] | --rebuild DIR [--until SAVEPOINT]")
	fs := s.fs
	fs.BoolVar(&dump, "dump", false, "write the table as JSON lines {key, score} to FILE (default stdout)")
	fs.StringVar(&rebuild, "rebuild", "", "build local LevelDB stores in DIR that `run --state-dir DIR` accepts as warm state")
	fs.StringVar(&until, "until", "", "read the changelog only up to this savepoint's offsets")
	if err := s.parse(args, 1); err != nil {
		return err
	}
	if dump == (rebuild != "") {
		return usagef("want exactly one of --dump [FILE] and --rebuild DIR")
	}
	var out io.Writer = env.stdout
	if dump && fs.NArg() > 0 {
		f, err := os.Create(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("dump file: %w", err)
		}
		defer f.Close()
		out = f
	} else if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	kc, topics := s.kc, s.topics
	adm, err := s.admin()
	if err != nil {
		return err
	}
	defer adm.Close()

	table := topics.Table()
	var limits map[int32]int64
	if until != "" {
		sp, err := readSavepoint(until)
		if err != nil {
			return err
		}
		if err := savepoint.CheckCompaction(ctx, adm, sp, time.Now()); err != nil {
			return err
		}
		table, limits = sp.Table.Name, sp.Until()
	}
	progress := newProgress(env.stderr, "replaying "+table).observe
	if dump {
		// One scratch table on disk for every partition: a key lives in one partition, and the
		// scratch table's order is the dump's.
		t, err := scratch.New("")
		if err != nil {
			return err
		}
		defer t.Close()
		if _, err := scratch.Load(ctx, kc, adm, t, table, nil, limits, progress); err != nil {
			return err
		}
		return dumpTable(out, t)
	}
	bounds, err := changelog.Offsets(ctx, adm, table)
	if err != nil {
		return err
	}
	targets, total, err := changelog.Targets(table, bounds, limits)
	if err != nil {
		return err
	}
	var records int64
	for _, p := range slices.Sorted(maps.Keys(bounds)) {
		// A partition with nothing to read gets an empty store, with no offset when its
		// changelog is empty: run then restores what comes later.
		last := bounds[p].End - 1
		if l, ok := limits[p]; ok {
			last = l - 1
		}
		if _, ok := targets[p]; !ok {
			last = min(last, bounds[p].Start-1)
		}
		n, err := store.Build(ctx, changelog.Reader(kc), rebuild, table, p, bounds[p].Start, last)
		if err != nil {
			return err
		}
		records += n
		progress(records, total)
	}
	fmt.Fprintf(env.stderr, "rebuilt %d partitions of %s from %d changelog records in %s: start `enricher run --state-dir %s`\n",
		len(bounds), table, records, rebuild, rebuild)
	return nil
}

// dumpTable writes every key's score as a JSON line, in key order, from a scratch table.
func dumpTable(w io.Writer, t *scratch.Table) error {
	enc := json.NewEncoder(w)
	return t.Each(func(k, v []byte) error {
		s, err := codecs.ScoreCodec{}.Decode(v)
		if err != nil {
			return fmt.Errorf("table record of key %q: %w", k, err)
		}
		if err := enc.Encode(codecs.Score{Key: string(k), Score: s.(codecs.Score).Score}); err != nil {
			return fmt.Errorf("write dump: %w", err)
		}
		return nil
	})
}
