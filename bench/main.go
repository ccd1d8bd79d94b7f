// Command bench measures enricher against the fastest a Go client does the same job, on one
// broker, in one run: end-to-end throughput (first input produced to last output consumed),
// cold restore of the changelog against a raw read of it, and warm restart. Every output is
// checked for the right score; a run that loses or corrupts a record fails.
//
//	go run ./bench --brokers 127.0.0.1:PORT [--keys 100000] [--inputs 2000000] [--json out.json]
//
// Peers still to come (issue 5): Kafka Streams, Flink, latency percentiles, peak RSS.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/changelog"
	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/kafkaconf"
	"github.com/enricher/enricher/processor"
	"github.com/enricher/enricher/topology"
)

type options struct {
	brokers    string
	partitions int
	keys       int
	inputs     int
	msgBytes   int
	jsonOut    string
}

// figures is what one run measured.
type figures struct {
	Keys, Inputs, Partitions int

	EnricherInputsPerSec float64 `json:"enricher_inputs_per_sec"`
	LoopInputsPerSec     float64 `json:"franz_go_loop_inputs_per_sec"`
	ColdRestorePerSec    float64 `json:"cold_restore_records_per_sec"`
	RawReadPerSec        float64 `json:"raw_changelog_read_records_per_sec"`
	WarmRestartSeconds   float64 `json:"warm_restart_seconds"`
}

func main() {
	var o options
	flag.StringVar(&o.brokers, "brokers", "", "Kafka brokers (scripts/kafka.sh start prints one)")
	flag.IntVar(&o.partitions, "partitions", 4, "partitions of every topic")
	flag.IntVar(&o.keys, "keys", 100_000, "keys, each scored once")
	flag.IntVar(&o.inputs, "inputs", 2_000_000, "inputs to enrich")
	flag.IntVar(&o.msgBytes, "message-bytes", 100, "size of each input's message")
	flag.StringVar(&o.jsonOut, "json", "", "also write the figures as JSON to this file")
	flag.Parse()
	if o.brokers == "" || o.partitions <= 0 || o.keys <= 0 || o.inputs <= 0 || o.msgBytes <= 0 {
		fmt.Fprintln(os.Stderr, "bench: --brokers is required; --partitions, --keys, --inputs and --message-bytes must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	f, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	report(os.Stdout, f)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(f, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

func progress(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

func run(ctx context.Context, o options) (figures, error) {
	f := figures{Keys: o.keys, Inputs: o.inputs, Partitions: o.partitions}
	kc := kafkaconf.Defaults()
	kc.Brokers = strings.Split(o.brokers, ",")
	kc.ClientID = "enricher-bench"
	cl, err := kc.Client(kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		return f, err
	}
	defer cl.Close()
	adm, err := kc.Admin()
	if err != nil {
		return f, err
	}
	defer adm.Close()
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)

	// enricher
	topics := topology.Topics{Group: "bench-" + stamp, Input: "bench-in-" + stamp, Scores: "bench-sc-" + stamp, Output: "bench-out-" + stamp}
	if _, err := topology.Ensure(ctx, adm, topics, topology.Spec{Partitions: int32(o.partitions), ReplicationFactor: -1, CreateStreams: true}); err != nil {
		return f, err
	}
	progress("writing %d scores", o.keys)
	if err := writeScores(ctx, kc, cl, topics.Scores, o); err != nil {
		return f, err
	}
	state, err := os.MkdirTemp("", "enricher-bench-state-")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(state)
	r := newRunner(kc, topics, state)
	rctx, stopRunner := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.run(rctx) }()
	if err := waitEnd(ctx, adm, topics.Table(), int64(o.keys)); err != nil {
		stopRunner()
		return f, err
	}
	progress("enricher: enriching %d inputs", o.inputs)
	f.EnricherInputsPerSec, err = throughput(ctx, kc, cl, topics.Input, topics.Output, o)
	stopRunner()
	if rerr := <-done; err == nil {
		err = rerr
	}
	if err != nil {
		return f, fmt.Errorf("enricher: %w", err)
	}

	// cold restore and the raw read it compares to
	progress("raw read of the changelog")
	start := time.Now()
	parts, err := changelog.Read(ctx, kc, adm, topics.Table(), nil, nil)
	if err != nil {
		return f, err
	}
	f.RawReadPerSec = float64(parts.Keys()) / time.Since(start).Seconds()
	progress("cold restore")
	cold, err := os.MkdirTemp("", "enricher-bench-cold-")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(cold)
	restored, took, err := startUntilRunning(ctx, kc, topics, cold)
	if err != nil {
		return f, err
	}
	f.ColdRestorePerSec = float64(restored) / took.Seconds()
	progress("warm restart")
	_, took, err = startUntilRunning(ctx, kc, topics, cold)
	if err != nil {
		return f, err
	}
	f.WarmRestartSeconds = took.Seconds()

	// the franz-go loop on topics of its own with the same workload
	loopTopics := topology.Topics{Group: "bench-loop-" + stamp, Input: "bench-lin-" + stamp, Scores: "bench-lsc-" + stamp, Output: "bench-lout-" + stamp}
	if _, err := topology.Ensure(ctx, adm, loopTopics, topology.Spec{Partitions: int32(o.partitions), ReplicationFactor: -1, CreateStreams: true}); err != nil {
		return f, err
	}
	if err := writeScores(ctx, kc, cl, loopTopics.Scores, o); err != nil {
		return f, err
	}
	lctx, stopLoop := context.WithCancel(ctx)
	loopErr := make(chan error, 1)
	go func() { loopErr <- franzLoop(lctx, kc, loopTopics, o) }()
	progress("franz-go loop: enriching %d inputs", o.inputs)
	f.LoopInputsPerSec, err = throughput(ctx, kc, cl, loopTopics.Input, loopTopics.Output, o)
	stopLoop()
	if lerr := <-loopErr; err == nil && lerr != nil && !errors.Is(lerr, context.Canceled) {
		err = lerr
	}
	if err != nil {
		return f, fmt.Errorf("franz-go loop: %w", err)
	}
	_, _ = adm.DeleteTopics(context.Background(), topics.Input, topics.Scores, topics.Output, topics.Table(), topics.DLQ(),
		loopTopics.Input, loopTopics.Scores, loopTopics.Output, loopTopics.Table(), loopTopics.DLQ())
	return f, nil
}

func score(i int) int64 { return int64(i)*7 + 1 }

func writeScores(ctx context.Context, kc kafkaconf.Config, cl *kgo.Client, topic string, o options) error {
	batch := make([]*kgo.Record, 0, o.keys)
	for i := 0; i < o.keys; i++ {
		key := "key-" + strconv.Itoa(i)
		v, _ := json.Marshal(codecs.Score{Key: key, Score: score(i)})
		r := &kgo.Record{Topic: topic, Key: []byte(key), Value: v}
		kc.PartitionRecord(r, int32(o.partitions))
		batch = append(batch, r)
	}
	return cl.ProduceSync(ctx, batch...).FirstErr()
}

// throughput writes o.inputs inputs and reads the outputs, checking every score, and returns
// inputs per second from the first input produced to the last output consumed.
func throughput(ctx context.Context, kc kafkaconf.Config, cl *kgo.Client, input, output string, o options) (float64, error) {
	reader, err := kc.Client(kgo.ConsumeTopics(output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20))
	if err != nil {
		return 0, err
	}
	defer reader.Close()
	msg := strings.Repeat("m", o.msgBytes)
	start := time.Now()
	var produceErr atomic.Pointer[error]
	go func() {
		for i := 0; i < o.inputs && ctx.Err() == nil; i++ {
			k := i % o.keys
			key := "key-" + strconv.Itoa(k)
			v, _ := json.Marshal(codecs.Input{Key: key, Message: msg})
			r := &kgo.Record{Topic: input, Key: []byte(key), Value: v}
			kc.PartitionRecord(r, int32(o.partitions))
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					produceErr.CompareAndSwap(nil, &err)
				}
			})
		}
	}()
	got, wrong := 0, 0
	lastReport := start
	deadline := time.Now().Add(30 * time.Minute)
	for got < o.inputs {
		if p := produceErr.Load(); p != nil {
			return 0, *p
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d outputs after 30 minutes", got, o.inputs)
		}
		fs := reader.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			var out codecs.Output
			k, _ := strconv.Atoi(strings.TrimPrefix(string(r.Key), "key-"))
			if json.Unmarshal(r.Value, &out) != nil || out.Score != score(k) || len(out.Message) != o.msgBytes {
				wrong++
			}
			got++
		})
		if time.Since(lastReport) > 2*time.Second {
			lastReport = time.Now()
			progress("  %d/%d outputs, %.0f/s", got, o.inputs, float64(got)/time.Since(start).Seconds())
		}
	}
	rate := float64(o.inputs) / time.Since(start).Seconds()
	if wrong > 0 {
		return 0, fmt.Errorf("%d of %d outputs have a wrong score or message", wrong, got)
	}
	return rate, nil
}

// runner runs enricher's processor in this process.
type runner struct{ r *processor.Runner }

func newRunner(kc kafkaconf.Config, topics topology.Topics, state string, onProc ...func(*goka.Processor)) *runner {
	cfg := processor.Config{Kafka: kc, Topics: topics, StateDir: state, Limits: codecs.Limits{MaxValueBytes: 900 * 1024},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if len(onProc) > 0 {
		cfg.OnProcessor = onProc[0]
	}
	r, err := processor.New(cfg)
	if err != nil {
		panic(err) // the config above is valid by construction
	}
	return &runner{r: r}
}

func (r *runner) run(ctx context.Context) error { return r.r.Run(ctx) }

// startUntilRunning starts a processor on state and returns the changelog records it restored
// and the time until every partition ran.
func startUntilRunning(ctx context.Context, kc kafkaconf.Config, topics topology.Topics, state string) (int64, time.Duration, error) {
	procs := make(chan *goka.Processor, 4)
	r := newRunner(kc, topics, state, func(p *goka.Processor) { procs <- p })
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.run(rctx) }()
	defer func() { cancel(); <-done }()
	select {
	case p := <-procs:
		select {
		case <-p.StateReader().WaitForState(goka.ProcStateRunning):
			return r.r.Stats().RecordsRestored.Load(), time.Since(start), nil
		case err := <-done:
			return 0, 0, fmt.Errorf("processor stopped: %v", err)
		case <-time.After(10 * time.Minute):
			return 0, 0, errors.New("processor did not run within 10 minutes")
		}
	case err := <-done:
		return 0, 0, fmt.Errorf("processor stopped: %v", err)
	}
}

func waitEnd(ctx context.Context, adm *kadm.Client, topic string, n int64) error {
	for ctx.Err() == nil {
		b, err := changelog.Offsets(ctx, adm, topic)
		if err == nil {
			var total int64
			for _, x := range b {
				total += x.End
			}
			if total >= n {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return ctx.Err()
}

func report(w io.Writer, f figures) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "figure\tenricher\tpeer\tratio\t\n")
	fmt.Fprintf(tw, "throughput, inputs/s (peer: franz-go JSON loop)\t%.0f\t%.0f\t%.2fx\t\n", f.EnricherInputsPerSec, f.LoopInputsPerSec, f.EnricherInputsPerSec/f.LoopInputsPerSec)
	fmt.Fprintf(tw, "cold restore, records/s (peer: raw changelog read)\t%.0f\t%.0f\t%.2fx\t\n", f.ColdRestorePerSec, f.RawReadPerSec, f.ColdRestorePerSec/f.RawReadPerSec)
	fmt.Fprintf(tw, "warm restart, seconds to running\t%.3f\t\t\t\n", f.WarmRestartSeconds)
	fmt.Fprintln(tw, "(restore and restart times run from process start: they include joining the group)\t\t\t\t")
	_ = tw.Flush()
	fmt.Fprintf(w, "(%d keys, %d inputs, %d partitions)\n", f.Keys, f.Inputs, f.Partitions)
}
