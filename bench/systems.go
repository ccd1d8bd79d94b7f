package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/enricher/enricher/topology"
)

// topics are one system's fresh topics for one run.
type topics struct{ group, input, scores, output string }

// instance is one replica of a system: its consumer group, its local state and, for enricher,
// the address of its web server.
type instance struct {
	topics
	brokers  string
	stateDir string
	webAddr  string
	registry string // the schema registry's URL, for a system that reads a registry format
}

// system is one of the four systems the benchmark compares.
type system struct {
	id, name string
	// changelog is the topic a cold start restores from ("" when the system keeps no state in
	// Kafka, as Flink, whose state lives in its own checkpoints).
	changelog func(topics) string
	// replicas says the system scales by adding processes to one consumer group.
	replicas bool
	// format is the registry format the system reads and writes ("avro", "protobuf",
	// "json-schema") through a schema registry the benchmark then starts; "" for JSON.
	format string
	// command returns the command line of an instance.
	command func(instance) []string
	// note is printed under the table.
	note string
}

// buildSystems returns the systems by id, their programs built into work.
func buildSystems(ctx context.Context, ids []string, work string, enricherArgs []string) ([]system, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var out []system
	for _, id := range ids {
		if variant, rev, ok := strings.Cut(id, "@"); ok {
			v, known := enricherVariants[variant]
			if !known {
				return nil, fmt.Errorf("unknown system %q: only enricher and its variants build at a revision", id)
			}
			sys, err := enricherAt(ctx, id, rev, work, append(v.flags, enricherArgs...))
			if err != nil {
				return nil, err
			}
			sys.format = v.format
			out = append(out, sys)
			continue
		}
		if v, ok := enricherVariants[id]; ok {
			bin := filepath.Join(work, "enricher")
			if _, err := os.Stat(bin); err != nil {
				progress("building enricher")
				if err := run(ctx, "go", "build", "-o", bin, "./cmd/enricher"); err != nil {
					return nil, fmt.Errorf("build enricher (run the benchmark from the repository's root): %w", err)
				}
			}
			sys := enricherSystem(id, v.name, bin, append(v.flags, enricherArgs...))
			sys.format = v.format
			out = append(out, sys)
			continue
		}
		switch id {
		case "loop":
			out = append(out, system{id: id, name: "franz-go loop", replicas: true,
				changelog: func(t topics) string { return t.scores },
				command: func(i instance) []string {
					return []string{self, "loop", "--brokers", i.brokers, "--group", i.group, "--input", i.input,
						"--scores", i.scores, "--output", i.output}
				},
				note: "franz-go loop: keeps the scores in a Go map, restores by reading the whole scores topic"})
		case "kstreams", "kstreams-eos":
			cp, err := buildPeer(ctx, "kstreams")
			if err != nil {
				return nil, err
			}
			name, guarantee := "Kafka Streams", "at_least_once"
			if id == "kstreams-eos" {
				name, guarantee = "Kafka Streams exactly_once_v2", "exactly_once_v2"
			}
			out = append(out, system{id: id, name: name, replicas: true,
				changelog: func(t topics) string { return t.group + "-scores-changelog" },
				command: func(i instance) []string {
					return append(javaArgs(cp, nil), "enricher.bench.KStreamsPeer", "--brokers", i.brokers, "--input", i.input,
						"--scores", i.scores, "--output", i.output, "--app-id", i.group, "--state-dir", i.stateDir,
						"--guarantee", guarantee)
				}})
		case "flink":
			cp, err := buildPeer(ctx, "flink")
			if err != nil {
				return nil, err
			}
			flags, err := os.ReadFile(filepath.Join("bench", "peers", "flink", "jvm.flags"))
			if err != nil {
				return nil, fmt.Errorf("flink peer: %w", err)
			}
			out = append(out, system{id: id, name: "Flink",
				changelog: func(topics) string { return "" },
				command: func(i instance) []string {
					return append(javaArgs(cp, strings.Fields(string(flags))), "enricher.bench.FlinkPeer", "--brokers", i.brokers,
						"--input", i.input, "--scores", i.scores, "--output", i.output, "--group", i.group,
						"--checkpoint-dir", i.stateDir)
				},
				note: "Flink: a local MiniCluster in one JVM; its state lives in Flink checkpoints, not in a Kafka changelog, and it rescales by restarting from a savepoint, not by adding a replica"})
		default:
			return nil, fmt.Errorf("unknown system %q (want enricher, enricher-unaligned, enricher-asof, enricher-eos, enricher-avro, enricher-protobuf, enricher-json-schema, enricher@REV or VARIANT@REV, loop, kstreams, kstreams-eos, flink)", id)
		}
	}
	return out, nil
}

// enricherVariants are the enricher binary with other flags, so what a mode costs is measured
// in one run.
var enricherVariants = map[string]struct {
	name   string
	flags  []string
	format string // a registry format; "" for JSON
}{
	"enricher":             {"enricher", nil, ""},
	"enricher-unaligned":   {"enricher --max-idle -1", []string{"--max-idle", "-1"}, ""},
	"enricher-asof":        {"enricher --join as-of", []string{"--join", "as-of"}, ""},
	"enricher-eos":         {"enricher --guarantee exactly-once", []string{"--guarantee", "exactly-once"}, ""},
	"enricher-avro":        {"enricher --format avro", []string{"--format", "avro"}, "avro"},
	"enricher-protobuf":    {"enricher --format protobuf", []string{"--format", "protobuf"}, "protobuf"},
	"enricher-json-schema": {"enricher --format json-schema", []string{"--format", "json-schema"}, "json-schema"},
}

// enricherAt builds enricher at git revision rev (a work tree of its own under work) as system
// id, so a change and the code before it are measured in one run.
func enricherAt(ctx context.Context, id, rev, work string, args []string) (system, error) {
	src, bin := filepath.Join(work, "src-"+rev), filepath.Join(work, "enricher-"+rev)
	progress("building enricher at %s", rev)
	if err := run(ctx, "git", "worktree", "add", "--detach", src, rev); err != nil {
		return system{}, err
	}
	defer func() { _ = run(context.Background(), "git", "worktree", "remove", "--force", src) }()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/enricher")
	build.Dir, build.Stdout, build.Stderr = src, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return system{}, fmt.Errorf("build enricher at %s: %w", rev, err)
	}
	return enricherSystem(id, id, bin, args), nil
}

// enricherSystem is the enricher binary bin, run with extra flags args.
func enricherSystem(id, name, bin string, args []string) system {
	return system{id: id, name: name, replicas: true,
		changelog: func(t topics) string { return (topology.Topics{Group: t.group}).Table() },
		command: func(i instance) []string {
			cmd := []string{bin, "run", "--brokers", i.brokers, "--group", i.group, "--input", i.input,
				"--scores", i.scores, "--output", i.output, "--state-dir", i.stateDir,
				"--web-addr", i.webAddr, "--pprof"}
			if i.registry != "" {
				cmd = append(cmd, "--schema-registry", i.registry)
			}
			return append(cmd, args...)
		}}
}

// jvmHeap bounds both Java peers' heaps alike, so their peak RSS compares.
const jvmHeap = "-Xmx1g"

func javaArgs(classpath string, flags []string) []string {
	args := append([]string{"java", jvmHeap}, flags...)
	return append(args, "-cp", classpath)
}

// buildPeer builds a Java peer under bench/peers with Maven (its jars cached in ~/.m2) and
// returns its class path.
func buildPeer(ctx context.Context, name string) (string, error) {
	dir := filepath.Join("bench", "peers", name)
	progress("building the %s peer with Maven (the first build downloads its jars)", name)
	mvn := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", filepath.Join(dir, "pom.xml"), "package", "dependency:build-classpath",
		"-Dmdep.outputFile=target/classpath.txt", "-DskipTests")
	if out, err := mvn.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the %s peer with Maven: %w\n%s", name, err, out)
	}
	cp, err := os.ReadFile(filepath.Join(dir, "target", "classpath.txt"))
	if err != nil {
		return "", fmt.Errorf("%s peer: %w", name, err)
	}
	abs, err := filepath.Abs(filepath.Join(dir, "target", "classes"))
	if err != nil {
		return "", err
	}
	return abs + string(os.PathListSeparator) + strings.TrimSpace(string(cp)), nil
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// freeAddr returns a free loopback address for a web server.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
