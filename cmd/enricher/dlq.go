package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/enricher/enricher/internal/dlq"
)

func cmdDLQ(ctx context.Context, env *environment, args []string) error {
	var reason string
	var at stringList
	var all, asJSON, dryRun bool
	s := newSetup(env, "dlq", "dlq list [--reason R] [--json] | redrive (--reason R | --at P/O ... | --all) [--dry-run]")
	fs := s.fs
	fs.StringVar(&reason, "reason", "", "only dead letters with this reason (invalid_json, wrong_type, too_large, ...)")
	fs.Var(&at, "at", "only the dead letter at PARTITION/OFFSET of the dead-letter topic (repeatable)")
	fs.BoolVar(&all, "all", false, "redrive: every dead letter")
	fs.BoolVar(&asJSON, "json", false, "list: JSON lines with the whole value")
	fs.BoolVar(&dryRun, "dry-run", false, "redrive: show what would be redriven, publish nothing")
	action, rest, err := subcommand(fs, args, "list", "redrive")
	if err != nil {
		return err
	}
	if err := s.parse(rest, 0); err != nil {
		return err
	}
	filter := dlq.Filter{Reason: reason, At: map[string]bool{}}
	for _, a := range at {
		var p int32
		var o int64
		if n, err := fmt.Sscanf(a, "%d/%d", &p, &o); n != 2 || err != nil || p < 0 || o < 0 {
			return usagef("--at: %q is not PARTITION/OFFSET", a)
		}
		filter.At[fmt.Sprintf("%d/%d", p, o)] = true
	}
	if action == "redrive" && !all && reason == "" && len(at) == 0 {
		return usagef("redrive needs --reason, --at or --all")
	}
	kc, topics := s.kc, s.topics
	adm, err := s.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	letters, err := dlq.List(ctx, kc, adm, topics.DLQ(), filter)
	if err != nil {
		return err
	}

	if action == "list" || dryRun {
		if asJSON {
			enc := json.NewEncoder(env.stdout)
			for _, l := range letters {
				if err := enc.Encode(l); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DLQ\tTIME\tREASON\tSOURCE\tKEY\tERROR")
		for _, l := range letters {
			fmt.Fprintf(tw, "%d/%d\t%s\t%s\t%s/%d/%d\t%s\t%s\n", l.Partition, l.Offset, l.Time.UTC().Format("2006-01-02T15:04:05Z"),
				l.Reason, l.SourceTopic, l.SourcePartition, l.SourceOffset, l.Key, clip(l.Error, 80))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if dryRun {
			fmt.Fprintf(env.stderr, "dry run: %d dead letters would be redriven\n", len(letters))
		}
		return nil
	}
	cl, err := kc.Client()
	if err != nil {
		return err
	}
	defer cl.Close()
	n, err := dlq.Redrive(ctx, kc, cl, topics.DLQ(), letters)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "redrove %d dead letters to their source topics\n", n)
	return nil
}

// stringList collects a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
