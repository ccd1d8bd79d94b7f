package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/savepoint"
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
	bounds, err := changelog.Offsets(ctx, adm, table)
	if err != nil {
		return err
	}
	parts, err := changelog.Read(ctx, kc, adm, table, limits, newProgress(env.stderr, "replaying "+table).observe)
	if err != nil {
		return err
	}
	if dump {
		return dumpTable(out, parts)
	}
	for p, values := range parts {
		last := bounds[p].End - 1
		if l, ok := limits[p]; ok {
			last = l - 1
		}
		if err := store.Build(rebuild, table, p, values, last); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stderr, "rebuilt %d partitions of %s with %d keys in %s: start `enricher run --state-dir %s`\n",
		len(parts), table, parts.Keys(), rebuild, rebuild)
	return nil
}

// dumpTable writes every key's score as a JSON line, sorted by key.
func dumpTable(w io.Writer, parts changelog.Partitions) error {
	var rows []codecs.Score
	for p, t := range parts {
		for k, v := range t {
			s, err := codecs.ScoreCodec{}.Decode(v)
			if err != nil {
				return fmt.Errorf("table record of key %q in partition %d: %w", k, p, err)
			}
			score := s.(codecs.Score)
			rows = append(rows, codecs.Score{Key: k, Score: score.Score})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	enc := json.NewEncoder(w)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write dump: %w", err)
		}
	}
	return nil
}
