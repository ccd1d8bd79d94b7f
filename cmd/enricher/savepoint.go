package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/enricher/enricher/internal/savepoint"
	"github.com/enricher/enricher/topology"
)

func cmdSavepoint(ctx context.Context, env *environment, args []string) error {
	var out, note string
	var force bool
	var scoresFrom string
	var replication int
	s := newSetup(env, "savepoint", "savepoint create --out FILE | show FILE | restore FILE [--group NEW] [--force]")
	fs := s.fs
	fs.StringVar(&out, "out", "", "create: the savepoint file to write")
	fs.StringVar(&note, "note", "", "create: a note stored in the savepoint")
	fs.BoolVar(&force, "force", false, "restore: overwrite the offsets and table a new group already has")
	fs.StringVar(&scoresFrom, "scores-from", "cut", "restore: where the group resumes the scores topic: cut (the savepoint's offsets: scores written after it are applied again) or end (they are skipped: roll back a bad batch of scores)")
	fs.IntVar(&replication, "replication-factor", -1, "restore: replication of the table and DLQ topics created (-1: broker default)")
	action, rest, err := subcommand(fs, args, "create", "show", "restore")
	if err != nil {
		return err
	}
	var file string
	if action != "create" {
		if file, rest, err = positional(rest, "savepoint "+action, "FILE"); err != nil {
			return err
		}
	}
	if err := s.parse(rest, 0); err != nil {
		return err
	}

	if action == "show" {
		sp, err := readSavepoint(file)
		if err != nil {
			return err
		}
		if err := sp.Summary(env.stdout); err != nil {
			return err
		}
		if lag := sp.RecordedLag(); lag > 0 {
			return sp.Usable(lag, time.Now())
		}
		return nil
	}
	if action == "create" && out == "" {
		return usagef("savepoint create needs --out FILE")
	}
	kc, topics := s.kc, s.topics
	cl, err := kc.Client()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm, err := s.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	c := savepoint.Cluster{Kafka: kc, Admin: adm, Client: cl}

	switch action {
	case "create":
		sp, err := savepoint.Create(ctx, c, topics, buildVersion())
		if err != nil {
			return err
		}
		sp.Note = note
		if err := writeFileAtomic(out, sp); err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "savepoint written to %s\n", out)
		return sp.Summary(env.stdout)
	default: // restore
		sp, err := readSavepoint(file)
		if err != nil {
			return err
		}
		if !flagSet(fs, "group") {
			topics.Group = sp.Group
		}
		kind := "new version"
		if topics.Group == sp.Group {
			kind = "rollback"
		}
		if scoresFrom != "cut" && scoresFrom != "end" {
			return usagef("--scores-from: %q is not cut or end", scoresFrom)
		}
		c.Progress = newProgress(env.stderr, "reading the savepoint's table").observe
		res, err := savepoint.Restore(ctx, c, sp, topics, topology.Spec{Partitions: sp.Partitions, ReplicationFactor: int16(replication)},
			savepoint.Options{Force: force, ScoresFromEnd: scoresFrom == "end"})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "restored savepoint of group %q into group %q (%s): %d keys; wrote %d values and %d tombstones to %s; set %d committed offsets\n",
			sp.Group, topics.Group, kind, res.Keys, res.Values, res.Tombstones, topics.Table(), res.Offsets)
		fmt.Fprintf(env.stdout, "continue with: enricher run --group %s\n", topics.Group)
		return nil
	}
}

func readSavepoint(path string) (*savepoint.Savepoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("savepoint file: %w", err)
	}
	defer f.Close()
	sp, err := savepoint.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("savepoint file %s: %w", path, err)
	}
	return sp, nil
}

// writeFileAtomic writes the savepoint next to path and renames it into place.
func writeFileAtomic(path string, sp *savepoint.Savepoint) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write savepoint: %w", err)
	}
	err = sp.Encode(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write savepoint %s: %w", path, err)
	}
	return nil
}

// flagSet tells whether a flag was given on the command line or through its ENRICHER_* variable.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
