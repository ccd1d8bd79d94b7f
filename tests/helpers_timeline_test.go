package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/enricher/enricher/codecs"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// asOfRound writes one input per key, tagged tag, at each of stamps, and returns the timeline
// with them added.
func (j *job) asOfRound(tl *timeline, keys int, tag string, stamps ...time.Time) {
	j.t.Helper()
	for i, ts := range stamps {
		j.inputWave(tl, keys, fmt.Sprintf("%s-%d", tag, i), ts)
	}
}

// onlyTagged returns the part of tl's inputs whose message starts with tag.
func (tl *timeline) onlyTagged(tag string) *timeline {
	out := &timeline{scores: tl.scores, inputs: map[outputID]time.Time{}}
	for id, ts := range tl.inputs {
		if strings.HasPrefix(id.message, tag) {
			out.inputs[id] = ts
		}
	}
	return out
}

// timeline is what a test wrote, by record timestamp: the score an input must carry is the
// latest score of its key stamped at or before the input (a score at the same millisecond
// counts), whatever order the records reached the processor in.
type timeline struct {
	mu     sync.Mutex                // for writers that run concurrently
	scores map[string][]stampedScore // by key, in the order written
	inputs map[outputID]time.Time    // (key, message) -> the input's timestamp
}

type stampedScore struct {
	ts    time.Time
	score int64
}

type outputID struct{ key, message string }

func newTimeline() *timeline {
	return &timeline{scores: map[string][]stampedScore{}, inputs: map[outputID]time.Time{}}
}

// expected returns the score the input (key, message) must carry.
func (tl *timeline) expected(id outputID) int64 {
	ts, best, score := tl.inputs[id], time.Time{}, int64(codecs.NoScore)
	for _, s := range tl.scores[id.key] {
		if !s.ts.After(ts) && !s.ts.Before(best) {
			best, score = s.ts, s.score
		}
	}
	return score
}

// scoreWave writes score for keys k0..k(n-1), stamped at ts.
func (j *job) scoreWave(tl *timeline, n int, score int64, ts time.Time) {
	j.t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		key := fmt.Sprintf("k%d", i)
		recs[i] = &kgo.Record{Key: []byte(key), Value: []byte(scoreLine(key, int(score))), Timestamp: ts}
		tl.scores[key] = append(tl.scores[key], stampedScore{ts: ts, score: score})
	}
	j.produceRaw(j.topics.Scores, recs...)
}

// inputWave writes an input with message for keys k0..k(n-1), stamped at ts.
func (j *job) inputWave(tl *timeline, n int, message string, ts time.Time) {
	j.t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		key := fmt.Sprintf("k%d", i)
		recs[i] = &kgo.Record{Key: []byte(key), Value: []byte(inputLine(key, message)), Timestamp: ts}
		tl.inputs[outputID{key, message}] = ts
	}
	j.produceRaw(j.topics.Input, recs...)
}

// joined is what a run of the job wrote to an output topic.
type joined struct {
	outputs map[outputID][]int64 // every output of each input, in the order written
	records int
}

// readJoined reads output until it holds an output for every input of tl (or 90 s pass).
func (j *job) readJoined(output string, tl *timeline) joined {
	j.t.Helper()
	got := joined{outputs: map[outputID][]int64{}}
	deadline := time.Now().Add(90 * time.Second)
	for !got.covers(tl) && time.Now().Before(deadline) {
		got = joined{outputs: map[outputID][]int64{}}
		for _, r := range j.records(output, 1<<30, 2*time.Second) {
			var o codecs.Output
			require.NoError(j.t, json.Unmarshal(r.Value, &o))
			id := outputID{o.Key, o.Message}
			got.outputs[id] = append(got.outputs[id], o.Score)
			got.records++
		}
	}
	return got
}

// recordSet returns every record of output as one line each (key, value, timestamp in
// milliseconds and headers), sorted: two topics with equal sets hold the same records.
func (j *job) recordSet(output string) []string {
	j.t.Helper()
	var out []string
	for _, r := range j.records(output, 1<<30, 2*time.Second) {
		line := fmt.Sprintf("%q %q %d", r.Key, r.Value, r.Timestamp.UnixMilli())
		for _, h := range r.Headers {
			line += fmt.Sprintf(" %s=%q", h.Key, h.Value)
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

// covers reports whether every input of tl has an output.
func (got joined) covers(tl *timeline) bool {
	for id := range tl.inputs {
		if len(got.outputs[id]) == 0 {
			return false
		}
	}
	return true
}

// joinVerdict counts the inputs whose first output carries a score that was not valid at the
// input's time, the inputs without an output, the duplicate outputs (at-least-once), and the
// duplicates with a wrong score. A consumer that drops duplicates by their source headers keeps
// the first output of each input.
type joinVerdict struct{ wrong, lost, duplicates, wrongDuplicates int }

func (tl *timeline) check(got joined) joinVerdict {
	var v joinVerdict
	for id := range tl.inputs {
		scores := got.outputs[id]
		if len(scores) == 0 {
			v.lost++
			continue
		}
		v.duplicates += len(scores) - 1
		want := tl.expected(id)
		if scores[0] != want {
			v.wrong++
		}
		for _, s := range scores[1:] {
			if s != want {
				v.wrongDuplicates++
			}
		}
	}
	return v
}

// multiset lists a run's outputs as sorted "key message score" lines.
func (got joined) multiset() []string {
	var out []string
	for id, scores := range got.outputs {
		for _, s := range scores {
			out = append(out, id.key+" "+id.message+" "+strconv.FormatInt(s, 10))
		}
	}
	sort.Strings(out)
	return out
}

// backfill writes the four waves for n keys, stamped a few milliseconds apart and an
// hour in the past: score 1, input "a", score 2, input "b".
func (j *job) backfill(n int) *timeline {
	j.t.Helper()
	tl := newTimeline()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	j.scoreWave(tl, n, 1, base)
	j.inputWave(tl, n, "a", base.Add(5*time.Millisecond))
	j.scoreWave(tl, n, 2, base.Add(10*time.Millisecond))
	j.inputWave(tl, n, "b", base.Add(15*time.Millisecond))
	return tl
}

// newGroupFrom restores savepoint sp into a new group of the job, writing to its own output
// topic, and returns the flags that run it and its output topic.
func (j *job) newGroupFrom(sp, suffix string, restore ...string) ([]string, string) {
	j.t.Helper()
	group, output := j.topics.Group+"-"+suffix, j.topics.Output+"-"+suffix
	j.t.Cleanup(func() {
		_, _ = j.adm.DeleteTopics(context.Background(), group+"-table", group+"-dlq", output)
	})
	j.createTopic(output, partitions)
	args := append([]string{"savepoint", "restore", sp, "--brokers", j.brokers, "--group", group, "--input", j.topics.Input,
		"--scores", j.topics.Scores, "--output", output}, restore...)
	code, _, stderr := j.enricher("", args...)
	require.Equal(j.t, 0, code, stderr)
	return []string{"--group", group, "--output", output}, output
}

// jobWithSavepoint returns a job with its topics created and the path of a savepoint taken
// before anything was written.
func jobWithSavepoint(t *testing.T) (*job, string) {
	t.Helper()
	j := newJob(t)
	j.createTopics(partitions)
	sp := filepath.Join(t.TempDir(), "before-the-waves.json")
	j.savepoint(sp)
	return j, sp
}

// liveWithKills runs three replicas with flags under live scores and inputs for 45 s. A
// replica is SIGKILLed after 20 s; with restart, it is started again on its state directory
// and another one is killed and restarted 10 s later. It returns the verdict on the outputs.
func (j *job) liveWithKills(flags []string, restart bool) joinVerdict {
	t := j.t
	const keys = 200
	j.createTopics(scalePartitions)
	flags = append([]string{"--max-idle", "500ms"}, flags...)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	reps := []*proc{j.start(dirs[0], flags...), j.start(dirs[1], flags...), j.start(dirs[2], flags...)}
	waitBalanced(t, scalePartitions, reps...)

	tl := newTimeline()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var produceErrs, scoresWritten atomic.Int64
	write := func(topic string, every time.Duration, record func(seq int, ts time.Time) (string, string)) {
		defer wg.Done()
		partitions := j.partitions(topic)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for seq := 0; ctx.Err() == nil; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ts := time.UnixMilli(time.Now().UnixMilli())
			key, value := record(seq, ts)
			r := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value), Timestamp: ts}
			j.kc.PartitionRecord(r, partitions)
			if err := j.cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				produceErrs.Add(1)
			}
		}
	}
	wg.Add(2)
	go write(j.topics.Scores, 15*time.Millisecond, func(seq int, ts time.Time) (string, string) {
		key := fmt.Sprintf("k%d", (seq*7)%keys)
		tl.mu.Lock()
		tl.scores[key] = append(tl.scores[key], stampedScore{ts: ts, score: int64(seq)})
		tl.mu.Unlock()
		scoresWritten.Add(1)
		return key, scoreLine(key, seq)
	})
	go write(j.topics.Input, 10*time.Millisecond, func(seq int, ts time.Time) (string, string) {
		key, msg := fmt.Sprintf("k%d", seq%keys), "live-"+strconv.Itoa(seq)
		tl.mu.Lock()
		tl.inputs[outputID{key, msg}] = ts
		tl.mu.Unlock()
		return key, inputLine(key, msg)
	})
	time.Sleep(20 * time.Second)
	reps[1].stop(syscall.SIGKILL)
	if restart {
		reps[1] = j.start(dirs[1], flags...)
		time.Sleep(10 * time.Second)
		reps[2].stop(syscall.SIGKILL)
		reps[2] = j.start(dirs[2], flags...)
		time.Sleep(15 * time.Second)
	} else {
		time.Sleep(25 * time.Second)
	}
	cancel()
	wg.Wait()
	require.Zero(t, produceErrs.Load(), "records that failed to produce")

	got := j.readJoined(j.topics.Output, tl)
	v := tl.check(got)
	t.Logf("%d inputs, %d scores: %d first outputs wrong, %d lost, %d duplicates (%d with a score newer than the input: the table had moved on when the input was redelivered)",
		len(tl.inputs), scoresWritten.Load(), v.wrong, v.lost, v.duplicates, v.wrongDuplicates)
	for i, p := range reps {
		if restart || i != 1 {
			require.Equal(t, 0, p.stop(syscall.SIGTERM))
		}
	}
	return v
}
