package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/dlq"
)

// load writes inputs at a steady rate, each with a unique message, over keys k0..k(keys-1).
type load struct {
	j      *job
	cancel context.CancelFunc
	done   chan struct{}
	sent   atomic.Int64
	errs   atomic.Int64
}

func (j *job) startLoad(keys int, every time.Duration) *load {
	j.t.Helper()
	return j.startWriting(j.topics.Input, every, func(seq int) (string, []byte) {
		key := fmt.Sprintf("k%d", seq%keys)
		v, _ := json.Marshal(codecs.Input{Key: key, Message: "m-" + strconv.Itoa(seq)})
		return key, v
	})
}

// startScores writes a score every interval over keys k0..k(keys-1); record seq has score seq.
func (j *job) startScores(keys int, every time.Duration) *load {
	j.t.Helper()
	return j.startWriting(j.topics.Scores, every, func(seq int) (string, []byte) {
		key := fmt.Sprintf("k%d", seq%keys)
		v, _ := json.Marshal(codecs.Score{Key: key, Score: int64(seq)})
		return key, v
	})
}

// startWriting writes record(seq) to topic every interval until stopped.
func (j *job) startWriting(topic string, every time.Duration, record func(seq int) (string, []byte)) *load {
	j.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{j: j, cancel: cancel, done: make(chan struct{})}
	partitions := j.partitions(topic)
	go func() {
		defer close(l.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		var wg sync.WaitGroup
		defer wg.Wait()
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			key, v := record(seq)
			r := &kgo.Record{Topic: topic, Key: []byte(key), Value: v}
			j.kc.PartitionRecord(r, partitions)
			wg.Add(1)
			j.cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					l.errs.Add(1)
				}
			})
			l.sent.Add(1)
		}
	}()
	return l
}

// stop ends the load and returns how many inputs were written.
func (l *load) stop() int {
	l.cancel()
	<-l.done
	require.Zero(l.j.t, l.errs.Load(), "inputs that failed to produce")
	return int(l.sent.Load())
}

// output is one consumed output.
type output struct {
	key       string
	message   string
	score     int64
	partition int       // source partition
	at        time.Time // when the collector read it
}

// collector reads the output topic from the start while the test runs.
type collector struct {
	mu     sync.Mutex
	out    []output
	cancel context.CancelFunc
	done   chan struct{}
}

func (j *job) collect() *collector {
	j.t.Helper()
	cl, err := j.kc.Client(append([]kgo.Opt{kgo.ConsumeTopics(j.topics.Output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, j.readOpts...)...)
	require.NoError(j.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer cl.Close()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			// When the output was read, not its timestamp: outputs carry their input's.
			read := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				var o codecs.Output
				if json.Unmarshal(r.Value, &o) != nil {
					return
				}
				p := -1
				for _, h := range r.Headers {
					if h.Key == dlq.HeaderSourcePartition {
						p, _ = strconv.Atoi(string(h.Value))
					}
				}
				c.mu.Lock()
				c.out = append(c.out, output{key: o.Key, message: o.Message, score: o.Score, partition: p, at: read})
				c.mu.Unlock()
			})
		}
	}()
	j.t.Cleanup(func() { cancel(); <-c.done })
	return c
}

func (c *collector) snapshot() []output {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]output(nil), c.out...)
}

// verdict checks that every one of sent inputs got an output with a score, and reports
// duplicates and the longest gap between consecutive outputs.
type verdict struct {
	unique, duplicates, noScore int
	longestGap                  time.Duration
	gapAt                       time.Time
	// stall is the longest time one source partition went without an output, between two of
	// its outputs: a rebalance that stops a partition shows here even when others go on.
	stall          time.Duration
	stallPartition int
}

func (c *collector) wait(t *testing.T, sent int) verdict {
	t.Helper()
	var v verdict
	require.Eventually(t, func() bool {
		v = c.judge()
		return v.unique >= sent
	}, 120*time.Second, 200*time.Millisecond, "every input gets an output")
	return v
}

func (c *collector) judge() verdict {
	outs := c.snapshot()
	seen := map[string]int{}
	var v verdict
	for _, o := range outs {
		seen[o.message]++
		if o.score == codecs.NoScore {
			v.noScore++
		}
	}
	v.unique = len(seen)
	v.duplicates = len(outs) - len(seen)
	sort.Slice(outs, func(i, j int) bool { return outs[i].at.Before(outs[j].at) })
	for i := 1; i < len(outs); i++ {
		if g := outs[i].at.Sub(outs[i-1].at); g > v.longestGap {
			v.longestGap, v.gapAt = g, outs[i-1].at
		}
	}
	if len(outs) > 0 {
		v.stall, v.stallPartition = longestStall(outs, time.Time{}, outs[len(outs)-1].at.Add(time.Second))
	}
	return v
}

// wrongScores counts the outputs whose score is not their key's in want.
func (c *collector) wrongScores(want map[string]int64) int {
	n := 0
	for _, o := range c.snapshot() {
		if o.score != want[o.key] {
			n++
		}
	}
	return n
}

// stallIn returns the longest per-partition stall that overlaps [from, to): a partition that
// stops at an event had its last output just before it.
func (c *collector) stallIn(from, to time.Time) (time.Duration, int) {
	outs := c.snapshot()
	sort.Slice(outs, func(i, j int) bool { return outs[i].at.Before(outs[j].at) })
	return longestStall(outs, from, to)
}

// longestStall returns, among outputs sorted by time, the longest gap between two outputs of
// one source partition that overlaps [from, to), and that partition (-1 for none).
func longestStall(outs []output, from, to time.Time) (time.Duration, int) {
	last := map[int]time.Time{}
	var worst time.Duration
	part := -1
	for _, o := range outs {
		if prev, ok := last[o.partition]; ok && o.at.After(from) && prev.Before(to) {
			if g := o.at.Sub(prev); g > worst {
				worst, part = g, o.partition
			}
		}
		last[o.partition] = o.at
	}
	return worst, part
}

// firstAfter returns when the first output from one of partitions was produced after t0.
func (c *collector) firstAfter(t0 time.Time, partitions map[int]bool) (time.Time, bool) {
	var first time.Time
	for _, o := range c.snapshot() {
		if partitions[o.partition] && o.at.After(t0) && (first.IsZero() || o.at.Before(first)) {
			first = o.at
		}
	}
	return first, !first.IsZero()
}

// steadyLoad scores keys k0..k59 (score 1000+i), then writes inputs over them every 5 ms, and
// returns once progress outputs have been read.
func (j *job) steadyLoad(progress int) (*collector, *load) {
	j.t.Helper()
	j.scoreRound(60, 1000)
	j.waitChangelog(60)
	c := j.collect()
	l := j.startLoad(60, 5*time.Millisecond)
	c.waitProgress(j.t, progress)
	return c, l
}

// eosVerdict asserts what exactly-once promises a read_committed reader: every input once,
// with its key's score.
func eosVerdict(t *testing.T, c *collector, sent int, scores map[string]int64) {
	t.Helper()
	v := c.wait(t, sent)
	v.report(t, sent)
	assert.Equal(t, sent, v.unique, "every input has an output")
	assert.Zero(t, v.duplicates, "no input has two outputs")
	assert.Zero(t, c.wrongScores(scores), "every output has its key's score")
}

// startBadInputs writes an input that is not JSON every interval: each must reach the DLQ.
func (j *job) startBadInputs(every time.Duration) *load {
	return j.startWriting(j.topics.Input, every, func(seq int) (string, []byte) {
		return fmt.Sprintf("k%d", seq%60), []byte(fmt.Sprintf("not json %d", seq))
	})
}

// waitProgress waits until n more outputs arrived: processing goes on.
func (c *collector) waitProgress(t *testing.T, n int) {
	t.Helper()
	base := len(c.snapshot())
	require.Eventually(t, func() bool { return len(c.snapshot()) >= base+n }, 120*time.Second, 100*time.Millisecond,
		"outputs stopped")
}

func (v verdict) report(t *testing.T, sent int) {
	t.Logf("inputs %d, outputs for %d of them, duplicates %d, outputs with -1 %d, longest gap between outputs %s, longest stall of one partition %s (partition %d)",
		sent, v.unique, v.duplicates, v.noScore, v.longestGap.Round(time.Millisecond), v.stall.Round(time.Millisecond), v.stallPartition)
}

func keys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}

// stallEvent runs event under the collector's watch and returns the longest stall of any one
// partition that began while it ran, once processing has gone on for settle more outputs.
func stallEvent(t *testing.T, c *collector, name string, event func()) time.Duration {
	t.Helper()
	from := time.Now()
	event()
	c.waitProgress(t, 300)
	stall, part := c.stallIn(from, time.Now())
	t.Logf("%s: longest stall of one partition %s (partition %d)", name, stall.Round(time.Millisecond), part)
	return stall
}
