package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/topology"
)

// harness measures one system on topics of its own.
type harness struct {
	o       options
	w       workload
	sys     system
	work    string
	t       topics
	cl      *kgo.Client // writes inputs and scores
	adm     *kadm.Client
	out     *collector
	format  recordFormat // the wire format of the system's records
	stopOut context.CancelFunc
	outErr  chan error
	seq     int64 // next input sequence number
	probe   int64 // next probe sequence number (negative)
	n       int   // instances started
	procs   []*proc
	failed  atomic.Pointer[error] // the first failed produce
}

func newHarness(ctx context.Context, o options, w workload, sys system, work, stamp string) (*harness, error) {
	// Kafka topic names take letters, digits, '.', '_' and '-' only (a system id may hold '@').
	prefix := "bench-" + stamp + "-" + strings.NewReplacer("@", "-at-").Replace(sys.id)
	h := &harness{o: o, w: w, sys: sys, work: work, probe: -1, outErr: make(chan error, 1),
		t: topics{group: prefix, input: prefix + "-input", scores: prefix + "-scores", output: prefix + "-output"}}
	var err error
	if h.cl, err = w.kc.Client(kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16)); err != nil {
		return nil, err
	}
	h.adm = kadm.NewClient(h.cl)
	resp, err := h.adm.CreateTopics(ctx, int32(o.partitions), -1, nil, h.t.input, h.t.scores, h.t.output)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		h.cl.Close()
		return nil, fmt.Errorf("create topics: %w", err)
	}
	// Read committed, as a consumer of an exactly-once system must: an output counts, and its
	// latency ends, when its transaction commits.
	reader, err := w.kc.Client(kgo.ConsumeTopics(h.t.output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		h.cl.Close()
		return nil, err
	}
	h.format = recordFormat(jsonRecords{})
	if sys.format != "" {
		if h.format, err = newRegistryRecords(ctx, sys.format, o.registry, h.t); err != nil {
			h.cl.Close()
			reader.Close()
			return nil, err
		}
	}
	h.out = newCollector(w, h.format, reader)
	octx, cancel := context.WithCancel(ctx)
	h.stopOut = cancel
	go func() { h.outErr <- h.out.run(octx); reader.Close() }()
	return h, nil
}

// close stops every instance still running, the collector, and deletes the system's topics.
func (h *harness) close() {
	for _, p := range h.procs {
		p.kill()
	}
	h.stopOut()
	<-h.outErr
	topics := []string{h.t.input, h.t.scores, h.t.output}
	if c := h.sys.changelog(h.t); c != "" && c != h.t.scores {
		topics = append(topics, c)
	}
	if strings.HasPrefix(h.sys.id, "enricher") {
		topics = append(topics, (topology.Topics{Group: h.t.group}).DLQ())
	}
	_, _ = h.adm.DeleteTopics(context.Background(), topics...)
	h.cl.Close()
}

// start starts an instance of the system on state directory dir.
func (h *harness) start(dir string) (*proc, string, error) {
	h.n++
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	inst := instance{topics: h.t, brokers: h.o.brokers, stateDir: dir, webAddr: addr}
	if h.sys.format != "" {
		inst.registry = h.o.registry
	}
	args := h.sys.command(inst)
	p, err := startProc(h.work, fmt.Sprintf("%s-%d", h.sys.id, h.n), args)
	if err != nil {
		return nil, "", err
	}
	h.procs = append(h.procs, p)
	return p, addr, nil
}

func (h *harness) stateDir(name string) string {
	return filepath.Join(h.work, h.t.group+"-"+name)
}

// measure runs every phase on the system and returns its figures.
func (h *harness) measure(ctx context.Context) (result, error) {
	res := result{System: h.sys.name, ID: h.sys.id}
	say := func(format string, args ...any) { progress("[%s] "+format, append([]any{h.sys.name}, args...)...) }

	say("writing %d scores over %d keys", h.w.scores, h.w.keys)
	if err := h.writeScores(ctx); err != nil {
		return res, err
	}
	a, addr, err := h.start(h.stateDir("a"))
	if err != nil {
		return res, err
	}
	took, err := h.ready(ctx, a)
	if err != nil {
		return res, fmt.Errorf("first start: %w", err)
	}
	res.StartupSeconds = took.Seconds()
	say("processing %.2fs after its start (all %d scores loaded)", took.Seconds(), h.w.keys)

	// throughput: inputs flat out
	say("throughput: %d inputs", h.o.inputs)
	var profile chan error
	if h.profiling() {
		profile = make(chan error, 1)
		go func() { profile <- h.profileEnricher(ctx, addr) }()
	}
	ph, first, err := h.phase(ctx, h.o.inputs, 0, a, nil)
	if err != nil {
		return res, fmt.Errorf("throughput: %w", err)
	}
	res.InputsPerSec = float64(h.o.inputs) / ph.last.Sub(first).Seconds()
	res.Duplicates += ph.duplicates
	say("throughput: %.0f inputs/s", res.InputsPerSec)
	if profile != nil {
		if err := <-profile; err != nil {
			say("profile: %v", err)
		}
	}

	// latency at fixed offered loads: fractions of this system's own peak, then rates common to
	// every system in the run
	var loads []loadPoint
	for _, frac := range peakFractions() {
		loads = append(loads, loadPoint{FractionOfPeak: frac, OfferedPerSec: frac * res.InputsPerSec})
	}
	for _, rate := range h.o.rates {
		loads = append(loads, loadPoint{OfferedPerSec: rate})
	}
	for _, lp := range loads {
		lp, dups, err := h.latency(ctx, lp, a, addr, say)
		if err != nil {
			return res, err
		}
		res.Load = append(res.Load, lp)
		res.Duplicates += dups
	}

	// rebalance: a second replica joins under half of peak load
	if h.sys.replicas {
		rate := 0.5 * res.InputsPerSec
		n := max(1, int(rate*h.o.rebalance.Seconds()))
		say("rebalance: a second replica joins at %.0f inputs/s", rate)
		var b *proc
		joined := func() error {
			var err error
			h.out.trackGaps()
			b, _, err = h.start(h.stateDir("b"))
			return err
		}
		ph, _, err := h.phase(ctx, n, rate, a, joined)
		if err != nil {
			return res, fmt.Errorf("rebalance: %w", err)
		}
		gap, stall := ph.maxGap.Seconds(), ph.maxStall.Seconds()
		res.RebalancePauseSeconds, res.RebalanceStallSeconds = &gap, &stall
		res.Duplicates += ph.duplicates
		say("  longest gap in outputs: %.2fs; longest stall of one partition: %.2fs", gap, stall)
		owners, err := h.inputOwners(ctx)
		if err != nil {
			return res, fmt.Errorf("rebalance: %w", err)
		}
		res.RebalanceInputOwners = &owners
		say("  replicas owning input partitions at the phase's end: %d of 2", owners)
		if err := b.stop(time.Minute); err != nil {
			return res, err
		}
	}
	if err := a.stop(time.Minute); err != nil {
		return res, err
	}
	res.PeakRSSBytes = a.peakRSS()

	// cold restore and warm restart from the changelog
	if topic := h.sys.changelog(h.t); topic != "" {
		records, err := h.records(ctx, topic)
		if err != nil {
			return res, err
		}
		dir := h.stateDir("c")
		say("cold restore of %d changelog records", records)
		took, err := h.restart(ctx, dir, h.sys.id+"-restore-cpu.pprof")
		if err != nil {
			return res, fmt.Errorf("cold restore: %w", err)
		}
		rate := float64(records) / took.Seconds()
		res.RestoredRecords, res.ColdRestoreSeconds, res.ColdRestorePerSec = records, took.Seconds(), &rate
		say("  %.2fs, %.0f records/s", took.Seconds(), rate)
		say("warm restart")
		if took, err = h.restart(ctx, dir, ""); err != nil {
			return res, fmt.Errorf("warm restart: %w", err)
		}
		warm := took.Seconds()
		res.WarmRestartSeconds = &warm
		say("  %.3fs", warm)
		if h.sys.id == "enricher" {
			rate, err := h.rawRead(ctx, topic)
			if err != nil {
				return res, err
			}
			res.RawChangelogReadPerSec = &rate
		}
	}
	return res, h.out.err()
}

// latency runs the load point's phase --repeat times and returns the figures of the run whose
// p99 is the median, with the lowest and highest p99 of all runs, and the duplicates seen. With
// --profile, the first run at half of peak is traced (runtime/trace) from addr's /debug/pprof.
func (h *harness) latency(ctx context.Context, lp loadPoint, a *proc, addr string, say func(string, ...any)) (loadPoint, int64, error) {
	n := max(1, int(lp.OfferedPerSec*h.o.window.Seconds()))
	var runs []loadPoint
	var dups int64
	for run := 1; run <= h.o.repeat; run++ {
		say("latency at %s: %.0f inputs/s for %s (run %d of %d)", lp.label(), lp.OfferedPerSec, h.o.window, run, h.o.repeat)
		var traced chan error
		if run == 1 && lp.FractionOfPeak == 0.5 && h.profiling() {
			// An execution trace shows where an output's time goes (network waits, channel
			// hand-offs, GC, syscalls); it slows the run it covers, so with --repeat the table
			// can be read from the runs after it.
			traced = make(chan error, 1)
			secs := max(1, int(h.o.window.Seconds()/2))
			go func() {
				traced <- h.fetchProfile(ctx, addr, fmt.Sprintf("/debug/pprof/trace?seconds=%d", secs), h.sys.id+"-latency.trace", 0)
			}()
		}
		// enricher breaks down its outputs' time on /metrics; other systems answer nothing there
		before, _ := scrapeStages(ctx, addr)
		ph, first, err := h.phase(ctx, n, lp.OfferedPerSec, a, nil)
		if traced != nil {
			if terr := <-traced; terr != nil {
				say("trace: %v", terr)
			}
		}
		if err != nil {
			return lp, dups, fmt.Errorf("load %s: %w", lp.label(), err)
		}
		p := latencyFigures(ph)
		got := lp
		got.AchievedPerSec = float64(n) / ph.last.Sub(first).Seconds()
		got.P50ms, got.P95ms, got.P99ms, got.P999ms, got.MaxMs = ms(p.p50), ms(p.p95), ms(p.p99), ms(p.p999), ms(p.max)
		dups += ph.duplicates
		say("  p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms, %.0f inputs/s achieved",
			got.P50ms, got.P99ms, got.P999ms, got.MaxMs, got.AchievedPerSec)
		if after, err := scrapeStages(ctx, addr); err == nil && before != nil {
			if got.Stages = stagesBetween(before, after); got.Stages != nil {
				say("  %s", got.Stages.describe())
			}
		}
		runs = append(runs, got)
	}
	slices.SortFunc(runs, func(x, y loadPoint) int { return cmp.Compare(x.P99ms, y.P99ms) })
	out := runs[len(runs)/2]
	if len(runs) > 1 {
		out.Runs, out.P99MinMs, out.P99MaxMs = len(runs), runs[0].P99ms, runs[len(runs)-1].P99ms
	}
	return out, dups, nil
}

// inputRecord is input record seq of key k, its message stamped with the time now.
func (h *harness) inputRecord(k int, seq int64) *kgo.Record {
	r := &kgo.Record{Topic: h.t.input, Key: []byte(keyName(k)), Value: h.format.input(keyName(k), h.w.message(seq, time.Now()))}
	h.w.kc.PartitionRecord(r, int32(h.w.partitions))
	return r
}

// profiling reports whether enricher's profiles are saved: for enricher and its variants,
// under names that start with the system's id.
func (h *harness) profiling() bool {
	return h.o.profileDir != "" && (h.sys.id == "enricher" || strings.HasPrefix(h.sys.id, "enricher-"))
}

// restart starts an instance on dir, waits until it processes, and stops it; it returns the
// time from its start to processing. With profile set and profiling on, a 2 s CPU profile of
// the start is saved under that name.
func (h *harness) restart(ctx context.Context, dir, profile string) (time.Duration, error) {
	p, addr, err := h.start(dir)
	if err != nil {
		return 0, err
	}
	var profiled chan error
	if profile != "" && h.profiling() {
		profiled = make(chan error, 1)
		go func() {
			profiled <- h.fetchProfile(ctx, addr, "/debug/pprof/profile?seconds=2", profile, 5*time.Second)
		}()
	}
	took, err := h.ready(ctx, p)
	if profiled != nil {
		if perr := <-profiled; perr != nil {
			progress("[%s] profile: %v", h.sys.name, perr)
		}
	}
	if err != nil {
		return 0, err
	}
	return took, p.stop(time.Minute)
}

// writeScores writes the workload's score records and waits until they are acknowledged.
func (h *harness) writeScores(ctx context.Context) error {
	for i := 0; i < h.w.scores; i++ {
		key, s := h.w.scoreOf(i)
		r := &kgo.Record{Topic: h.t.scores, Key: []byte(key), Value: h.format.score(key, s)}
		h.w.kc.PartitionRecord(r, int32(h.w.partitions))
		if err := h.produce(ctx, r); err != nil {
			return err
		}
	}
	return h.flush(ctx)
}

func (h *harness) produce(ctx context.Context, r *kgo.Record) error {
	if p := h.failed.Load(); p != nil {
		return *p
	}
	h.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			h.failed.CompareAndSwap(nil, &err)
		}
	})
	return nil
}

func (h *harness) flush(ctx context.Context) error {
	if err := h.cl.Flush(ctx); err != nil {
		return err
	}
	if p := h.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// phase produces n inputs, at rate per second (0: as fast as the client takes them), calls
// during (if set) a quarter of the way through, and waits for every output. It returns the
// phase and the time its first input was produced.
func (h *harness) phase(ctx context.Context, n int, rate float64, p *proc, during func() error) (*phase, time.Time, error) {
	lo := h.seq
	h.seq += int64(n)
	h.out.begin(lo, h.seq)
	keys := h.w.newKeySource(uint64(lo) + 1)
	first := time.Now()
	produced := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < n && err == nil; i++ {
			if rate > 0 {
				due := first.Add(time.Duration(float64(i) / rate * float64(time.Second)))
				if d := time.Until(due); d > time.Millisecond {
					time.Sleep(d)
				}
			}
			if during != nil && i == n/4 {
				err = during()
			}
			if err == nil {
				err = h.produce(ctx, h.inputRecord(keys.next(), lo+int64(i)))
			}
		}
		if err == nil {
			err = h.flush(ctx)
		}
		produced <- err
	}()
	report := func(got, of int64) {
		progress("[%s]   %d/%d outputs, %.0f/s", h.sys.name, got, of, float64(got)/time.Since(first).Seconds())
	}
	ph, err := h.out.await(ctx, h.o.lossTimeout, report, p.exited)
	if perr := <-produced; err == nil && perr != nil {
		err = perr
	}
	return ph, first, err
}

// ready sends a round of probes (see probeKeys), again every 250 ms, until one round comes
// back with every final score, and returns the time from the process's start.
func (h *harness) ready(ctx context.Context, p *proc) (time.Duration, error) {
	keys := h.w.probeKeys()
	var rounds [][]int64
	deadline := time.Now().Add(10 * time.Minute)
	var lastRound time.Time
	for {
		if time.Since(lastRound) >= 250*time.Millisecond {
			lastRound = time.Now()
			var round []int64
			for _, k := range keys {
				seq := h.probe
				h.probe--
				if err := h.produce(ctx, h.inputRecord(k, seq)); err != nil {
					return 0, err
				}
				round = append(round, seq)
			}
			rounds = append(rounds, round)
			if err := h.flush(ctx); err != nil {
				return 0, err
			}
		}
		for _, r := range rounds {
			if h.out.answered(r) {
				return time.Since(p.started), nil
			}
		}
		if err := p.exited(); err != nil {
			return 0, err
		}
		if err := h.out.err(); err != nil {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, errors.New("no probe answered with the right score within 10 minutes")
		}
		if err := waitCtx(ctx, 5*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// records is the number of records in a topic: the sum of its partitions' end minus start.
func (h *harness) records(ctx context.Context, topic string) (int64, error) {
	bounds, err := changelog.Offsets(ctx, h.adm, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, b := range bounds {
		n += b.End - b.Start
	}
	return n, nil
}

// rawRead reads a topic whole with one franz-go client (the project's changelog reader),
// nothing else done with the records, and returns records per second: the rate a restore is
// compared with.
func (h *harness) rawRead(ctx context.Context, topic string) (float64, error) {
	start := time.Now()
	var n int64
	if _, err := changelog.ReadTopic(ctx, h.w.kc, h.adm, topic, nil, nil, func(*kgo.Record) { n++ }); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// profileEnricher takes a CPU profile of enricher during the throughput phase, then its
// allocation profile, from its --pprof endpoints.
func (h *harness) profileEnricher(ctx context.Context, addr string) error {
	seconds := "10"
	if h.o.quick {
		seconds = "2"
	}
	if err := h.fetchProfile(ctx, addr, "/debug/pprof/profile?seconds="+seconds, h.sys.id+"-cpu.pprof", 0); err != nil {
		return err
	}
	return h.fetchProfile(ctx, addr, "/debug/pprof/allocs", h.sys.id+"-allocs.pprof", 0)
}

// fetchProfile saves a profile from a web server that may take up to wait to start listening.
func (h *harness) fetchProfile(ctx context.Context, addr, path, name string, wait time.Duration) error {
	if err := os.MkdirAll(h.o.profileDir, 0o755); err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
				continue
			}
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return os.WriteFile(filepath.Join(h.o.profileDir, name), b, 0o644)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// inputOwners counts the members of the system's consumer group that are assigned partitions of
// its input topic: 2 at the end of the rebalance phase means the new replica took work within
// it (Kafka Streams moves an active task only once the new replica has warmed its state up).
func (h *harness) inputOwners(ctx context.Context) (int, error) {
	groups, err := h.adm.DescribeGroups(ctx, h.t.group)
	if err != nil {
		return 0, fmt.Errorf("describe group %s: %w", h.t.group, err)
	}
	g, ok := groups[h.t.group]
	if !ok || g.Err != nil {
		return 0, fmt.Errorf("describe group %s: %v", h.t.group, g.Err)
	}
	owners := 0
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range a.Topics {
			if t.Topic == h.t.input && len(t.Partitions) > 0 {
				owners++
				break
			}
		}
	}
	return owners, nil
}
