// Command enricher enriches a stream of messages with the latest score of their key, keeping the
// scores in a goka table backed by a compacted Kafka changelog. Run `enricher help` for the
// subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise it comes from the
// module's build info.
var version = ""

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what a subcommand reads and writes besides its flags.
type environment struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

var commands = []command{
	{"run", "run the processor against a Kafka cluster (--brokers)", cmdRun},
	{"dev", "run an embedded broker and the processor in one process (demos, local development)", cmdDev},
	{"produce", "write input or score records: enricher produce input|score", cmdProduce},
	{"consume", "print records as JSON lines: enricher consume output|dlq|input|scores|table", cmdConsume},
	{"topics", "create or describe the job's topics: enricher topics create|describe", cmdTopics},
	{"savepoint", "record, show or restore a savepoint: enricher savepoint create|show|restore", cmdSavepoint},
	{"replay", "read the changelog: dump the table, or rebuild local stores offline", cmdReplay},
	{"table", "read the table from its changelog: enricher table get KEY|dump", cmdTable},
	{"dlq", "show dead letters with their reasons, or redrive them: enricher dlq list|redrive", cmdDLQ},
	{"version", "print the version", cmdVersion},
}

func main() {
	defaultGC()
	os.Exit(run(os.Args[1:], &environment{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}))
}

// gcPercent is the garbage collector's target when GOGC is not set: the processor allocates per
// record, and Go's default of 100 spent a large share of its CPU collecting; 200 trades memory
// for throughput (measured in docs/performance.md).
const gcPercent = 200

// defaultGC applies gcPercent unless the operator chose with GOGC.
func defaultGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}

// run executes one subcommand and returns the exit code: 0 success, 1 runtime failure, 2 usage.
func run(args []string, env *environment) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, env, args[1:])
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(env.stderr, "enricher %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(env.stderr, "enricher %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.stderr, "enricher: unknown command %q (run `enricher help`)\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "enricher: enrich a stream of messages with the latest score of their key.")
	fmt.Fprintln(w, "\nusage: enricher COMMAND [flags]; enricher COMMAND --help for a command's flags\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nexit codes: 0 clean stop, 1 runtime failure, 2 usage error")
}

func cmdVersion(_ context.Context, env *environment, args []string) error {
	fs := newFlags("version", "version", env.stderr)
	if err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, "enricher", buildVersion())
	return nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
		if bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "devel"
}
