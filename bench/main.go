package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/enricher/enricher/internal/kafkaconf"
)

// options are the benchmark's flags.
type options struct {
	brokers      string
	systems      []string
	partitions   int
	keys         int
	scores       int
	inputs       int
	msgBytes     int
	zipf         bool
	window       time.Duration // each fixed-load phase
	rates        []float64     // common offered rates, inputs/s, besides the fractions of own peak
	repeat       int           // runs of each fixed-load phase
	rebalance    time.Duration // the phase in which a second replica joins
	quick        bool
	jsonOut      string
	profileDir   string
	workDir      string
	lossTimeout  time.Duration
	enricherArgs []string // extra flags for `enricher run`
	registry     string   // the schema registry's URL, once started for a system that needs one
}

// harnessGCPercent is the garbage collector's target for the harness itself: its heap is small
// and it allocates for every output it checks, so at Go's default it collected a hundred times
// a second, and those collections showed up as output latency of whichever system it measured.
const harnessGCPercent = 800

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "loop" {
		if err := runLoop(ctx, os.Args[2:]); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "bench loop:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	debug.SetGCPercent(harnessGCPercent)
	rep, err := runAll(ctx, o)
	if rep != nil {
		rep.print(os.Stdout)
		if o.jsonOut != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if werr := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	var systems string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.brokers, "brokers", "", "Kafka brokers (scripts/kafka.sh start prints one)")
	fs.StringVar(&systems, "systems", "enricher,loop,kstreams,flink", "systems to run, comma-separated: enricher, enricher-unaligned (--max-idle -1), enricher-asof (--join as-of), enricher-eos (--guarantee exactly-once), enricher-avro, enricher-protobuf, enricher-json-schema (--format avro, protobuf or json-schema: the records in that format through a schema registry the benchmark starts), enricher@REV (built at git revision REV; also a variant, as enricher-eos@REV), loop (franz-go), kstreams, kstreams-eos (exactly_once_v2), flink")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of every topic")
	fs.IntVar(&o.keys, "keys", 100_000, "distinct keys, each scored")
	fs.IntVar(&o.scores, "scores", 0, "score records written over the keys; the last one per key is its final score (default: --keys)")
	fs.IntVar(&o.inputs, "inputs", 2_000_000, "inputs enriched flat out for the throughput figure")
	fs.IntVar(&o.msgBytes, "message-bytes", 100, "size of each input's message")
	var dist string
	fs.StringVar(&dist, "keys-distribution", "uniform", "how inputs pick keys: uniform or zipf")
	fs.DurationVar(&o.window, "load-window", 20*time.Second, "length of each fixed-load latency phase")
	var rates string
	fs.StringVar(&rates, "rates", "5000,25000", "offered rates, inputs/s, comma-separated, at which every system's latency is measured besides 25%, 50% and 90% of its own peak (\"\" for none); the default's first rate every system sustains, its second is near the slowest stream processor's peak")
	fs.IntVar(&o.repeat, "repeat", 1, "runs of each fixed-load phase; above 1 the table shows the run with the median p99 and the spread of p99 across runs")
	fs.DurationVar(&o.rebalance, "rebalance-window", 30*time.Second, "length of the phase in which a second replica joins")
	fs.BoolVar(&o.quick, "quick", false, "smoke run for CI: 10k keys, 50k inputs, short phases; checks correctness, asserts no timing")
	fs.StringVar(&o.jsonOut, "json", "", "also write the figures as JSON to this file")
	fs.StringVar(&o.profileDir, "profile", "", "write CPU and allocation profiles of enricher's throughput phase to this directory")
	fs.StringVar(&o.workDir, "work-dir", "", "where state directories and process logs go (default: a temporary directory, removed after a successful run)")
	var enricherArgs string
	fs.StringVar(&enricherArgs, "enricher-flags", "", "extra flags for enricher's processes, space-separated (e.g. \"--cache-entries 250000\")")
	fs.DurationVar(&o.lossTimeout, "loss-timeout", 2*time.Minute, "how long without a new output before missing outputs count as lost")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"keys": "10000", "inputs": "50000", "load-window": "3s", "rebalance-window": "15s", "rates": "2000"} {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	if o.scores == 0 {
		o.scores = o.keys
	}
	o.systems = strings.Split(systems, ",")
	for _, f := range strings.Split(rates, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		rate, err := strconv.ParseFloat(f, 64)
		if err != nil || rate <= 0 || math.IsInf(rate, 0) {
			return o, fmt.Errorf("--rates: %q is not a positive rate in inputs/s", f)
		}
		o.rates = append(o.rates, rate)
	}
	o.enricherArgs = strings.Fields(enricherArgs)
	switch {
	case o.brokers == "":
		return o, errors.New("--brokers is required (scripts/bench.sh starts a broker and passes it)")
	case o.partitions <= 0 || o.keys < o.partitions || o.inputs <= 0:
		return o, errors.New("--partitions and --inputs must be positive and --keys at least --partitions")
	case o.scores < o.keys:
		return o, fmt.Errorf("--scores %d is fewer than --keys %d: every key gets a score", o.scores, o.keys)
	case o.msgBytes < 40 || o.msgBytes > 100_000:
		return o, errors.New("--message-bytes must be between 40 (room for a sequence number and a time) and 100000")
	case dist != "uniform" && dist != "zipf":
		return o, fmt.Errorf("--keys-distribution %q: want uniform or zipf", dist)
	case o.repeat < 1:
		return o, errors.New("--repeat must be at least 1")
	case o.window < time.Second || o.rebalance < 10*time.Second:
		return o, errors.New("--load-window must be at least 1s and --rebalance-window at least 10s")
	}
	o.zipf = dist == "zipf"
	return o, nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// runAll builds the systems and measures each in turn; the report holds what was measured even
// when a later system fails.
func runAll(ctx context.Context, o options) (*report, error) {
	work := o.workDir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "enricher-bench-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	systems, err := buildSystems(ctx, o.systems, work, o.enricherArgs)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(systems, func(s system) bool { return s.format != "" }) {
		reg, err := startRegistry(ctx, filepath.Join(work, "registry"))
		if err != nil {
			return nil, err
		}
		defer reg.stop()
		o.registry = reg.url
	}
	kc := kafkaconf.Defaults()
	kc.Brokers = strings.Split(o.brokers, ",")
	kc.ClientID = "enricher-bench"
	w := workload{keys: o.keys, scores: o.scores, msgBytes: o.msgBytes, partitions: o.partitions, zipf: o.zipf, kc: kc}
	rep := newReport(o)
	stamp := time.Now().UTC().Format("150405")
	for _, sys := range systems {
		h, err := newHarness(ctx, o, w, sys, work, stamp)
		if err != nil {
			return rep, err
		}
		res, err := h.measure(ctx)
		h.close()
		if err != nil {
			return rep, fmt.Errorf("%s: %w (process logs in %s)", sys.name, err, work)
		}
		rep.add(res)
		if sys.note != "" {
			rep.Notes = append(rep.Notes, sys.note)
		}
	}
	if o.workDir == "" {
		_ = os.RemoveAll(work)
	}
	return rep, nil
}
