package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/enricher/enricher/topology"
)

// kvFlag collects repeated key=value flags.
type kvFlag map[string]string

func (f kvFlag) String() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k+"="+f[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (f kvFlag) Set(s string) error {
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value", kv)
		}
		f[k] = v
	}
	return nil
}

func cmdTopics(ctx context.Context, env *environment, args []string) error {
	var partitions, replication int
	var asJSON bool
	tableConfigs := kvFlag{}
	s := newSetup(env, "topics", "topics create|describe [flags]")
	fs := s.fs
	fs.IntVar(&partitions, "partitions", 4, "create: partitions of input, scores, output (and so of the table and DLQ)")
	fs.IntVar(&replication, "replication-factor", -1, "create: replication factor (-1: the broker's default)")
	fs.Var(tableConfigs, "table-config", "create: extra config of the table topic, key=value (repeatable)")
	var spRetention time.Duration
	fs.DurationVar(&spRetention, "savepoint-retention", topology.DefaultSavepointRetention, "create: "+savepointRetentionUsage)
	fs.BoolVar(&asJSON, "json", false, "describe: print JSON")
	action, rest, err := subcommand(fs, args, "create", "describe")
	if err != nil {
		return err
	}
	if err := s.parse(rest, 0); err != nil {
		return err
	}
	topics := s.topics
	if partitions <= 0 {
		return usagef("--partitions: must be positive, got %d", partitions)
	}
	if spRetention <= 0 {
		return usagef("--savepoint-retention: must be positive")
	}
	if replication == 0 || replication < -1 || replication > 32767 {
		return usagef("--replication-factor: must be -1 or between 1 and 32767, got %d", replication)
	}
	cluster, err := s.kc.Cluster()
	if err != nil {
		return err
	}
	if action == "create" {
		layout, err := topology.Ensure(ctx, cluster, topics, topology.Spec{
			Partitions: int32(partitions), ReplicationFactor: int16(replication),
			TableConfigs: tableConfigs, CreateStreams: true, SavepointRetention: spRetention,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "topics ready: %s, %s and %s with %d partitions\n", topics.Input, topics.Scores, topics.Table(), layout.Partitions)
	}
	infos, err := topology.Describe(ctx, cluster, topics)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tTOPIC\tPARTITIONS\tREPLICAS\tCONFIGS")
	for _, i := range infos {
		if !i.Exists {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t(missing)\n", i.Role, i.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", i.Role, i.Name, i.Partitions, i.Replicas, kvFlag(i.Configs).String())
	}
	return tw.Flush()
}
