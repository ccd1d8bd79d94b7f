package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// collector reads a system's output topic from the start and checks every output: the key is
// the workload's, the message came back byte for byte, and the score is the key's final score.
// Outputs of the phase being measured are counted by sequence number (so a duplicate is seen as
// one), timed from their produce time, and their arrival gaps are tracked.
type collector struct {
	w       workload
	records recordFormat // reads the outputs
	cl      *kgo.Client

	mu     sync.Mutex
	ph     *phase
	probes map[int64]bool // probe sequence -> answered with the right score
	wrong  []string       // the first wrong outputs, for the error
	nWrong int
}

// phase is one measured stretch: inputs lo <= seq < hi.
type phase struct {
	lo, hi     int64
	seen       []bool
	distinct   int64
	duplicates int64
	latencies  []time.Duration
	first      time.Time // first output of the phase
	last       time.Time // last new output of the phase
	gapFrom    time.Time // gaps are tracked from here on, if set
	maxGap     time.Duration
	prev       time.Time // previous output of any phase
	// maxStall is the longest time one output partition went without an output, once gaps are
	// tracked; prevByPartition holds each partition's previous output.
	maxStall        time.Duration
	prevByPartition map[int32]time.Time
}

func newCollector(w workload, records recordFormat, cl *kgo.Client) *collector {
	return &collector{w: w, records: records, cl: cl, probes: map[int64]bool{}}
}

// run polls until ctx ends.
func (c *collector) run(ctx context.Context) error {
	for {
		fs := c.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return fmt.Errorf("read outputs: %w", errs[0].Err)
		}
		now := time.Now()
		c.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) { c.check(r, now) })
		c.mu.Unlock()
	}
}

// check verifies one output. c.mu is held.
func (c *collector) check(r *kgo.Record, now time.Time) {
	k := keyIndex(r.Key)
	out, err := c.records.output(r.Value)
	if err != nil {
		c.fail("undecodable output %.80q: %v", r.Value, err)
		return
	}
	seq, at, err := parseMessage(out.Message)
	switch {
	case err != nil:
		c.fail("output of key %q: %v", r.Key, err)
		return
	case k < 0 || out.Key != string(r.Key):
		c.fail("output key %q, value key %q: not a workload key", r.Key, out.Key)
		return
	case len(out.Message) != c.w.msgBytes:
		c.fail("output of key %q has a %d-byte message, want %d", r.Key, len(out.Message), c.w.msgBytes)
		return
	}
	if seq < 0 { // a probe: a wrong score only means the system is not ready yet
		if out.Score == score(k) {
			c.probes[seq] = true
		}
		return
	}
	if out.Score != score(k) {
		c.fail("input %d, key %q: score %d, want %d", seq, r.Key, out.Score, score(k))
		return
	}
	ph := c.ph
	if ph == nil || seq < ph.lo || seq >= ph.hi {
		return // a duplicate of an earlier phase's input, redelivered after a restart
	}
	if !ph.gapFrom.IsZero() && now.After(ph.gapFrom) {
		from := ph.prev
		if from.Before(ph.gapFrom) {
			from = ph.gapFrom
		}
		ph.maxGap = max(ph.maxGap, now.Sub(from))
		if prev, ok := ph.prevByPartition[r.Partition]; ok {
			if prev.Before(ph.gapFrom) {
				prev = ph.gapFrom
			}
			ph.maxStall = max(ph.maxStall, now.Sub(prev))
		}
		ph.prevByPartition[r.Partition] = now
	}
	ph.prev = now
	i := seq - ph.lo
	if ph.seen[i] {
		ph.duplicates++
		return
	}
	ph.seen[i] = true
	ph.distinct++
	ph.latencies = append(ph.latencies, now.Sub(at))
	if ph.first.IsZero() {
		ph.first = now
	}
	ph.last = now
}

func (c *collector) fail(format string, args ...any) {
	c.nWrong++
	if len(c.wrong) < 5 {
		c.wrong = append(c.wrong, fmt.Sprintf(format, args...))
	}
}

// err reports wrong outputs seen so far.
func (c *collector) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nWrong == 0 {
		return nil
	}
	return fmt.Errorf("%d wrong outputs, first: %v", c.nWrong, c.wrong)
}

// begin starts a phase for inputs lo <= seq < hi.
func (c *collector) begin(lo, hi int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ph = &phase{lo: lo, hi: hi, seen: make([]bool, hi-lo)}
}

// trackGaps makes the current phase record the longest gap between outputs from now on.
func (c *collector) trackGaps() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ph.gapFrom = time.Now()
	c.ph.prevByPartition = map[int32]time.Time{}
}

// progress returns the phase's distinct outputs so far.
func (c *collector) progress() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ph.distinct
}

// await waits until every input of the phase has its output, or fails after timeout without
// one new output, or when check fails. It returns the finished phase.
func (c *collector) await(ctx context.Context, timeout time.Duration, report func(n, of int64), check func() error) (*phase, error) {
	lastN, lastChange := int64(-1), time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastReport := time.Now()
	for {
		if err := c.err(); err != nil {
			return nil, err
		}
		if err := check(); err != nil {
			return nil, err
		}
		c.mu.Lock()
		ph := c.ph
		n, of := ph.distinct, ph.hi-ph.lo
		c.mu.Unlock()
		if n == of {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.ph = nil
			return ph, nil
		}
		if n != lastN {
			lastN, lastChange = n, time.Now()
		} else if time.Since(lastChange) > timeout {
			return nil, fmt.Errorf("%d of %d inputs have no output after %s without progress: records were lost", of-n, of, timeout)
		}
		if report != nil && time.Since(lastReport) >= 2*time.Second {
			lastReport = time.Now()
			report(n, of)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// answered reports whether every probe in seqs got the right score back.
func (c *collector) answered(seqs []int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range seqs {
		if !c.probes[s] {
			return false
		}
	}
	return true
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// percentiles are a phase's latency figures.
type percentiles struct{ p50, p95, p99, p999, max time.Duration }

// latencyFigures summarises a phase's latencies.
func latencyFigures(ph *phase) percentiles {
	l := slices.Clone(ph.latencies)
	slices.Sort(l)
	return percentiles{percentile(l, 50), percentile(l, 95), percentile(l, 99), percentile(l, 99.9), percentile(l, 100)}
}
