package tests

import (
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
)

// Backfill and replay: waves written before the first start come out as a time-ordered run
// would produce them, and a savepoint taken before the waves, restored into a new group,
// gives the same outputs. A run without alignment (--max-idle -1) is the control.
func TestAlignedBackfillAndReplay(t *testing.T) {
	t.Parallel()
	const keys = 2000
	j, sp := jobWithSavepoint(t)
	tl := j.backfill(keys)

	p := j.start(t.TempDir())
	first := j.readJoined(j.topics.Output, tl)
	v := tl.check(first)
	assert.Equal(t, joinVerdict{}, v, "backfill: wrong scores, lost inputs, duplicates")
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	replayArgs, replayOut := j.newGroupFrom(sp, "replay")
	p = j.start(t.TempDir(), replayArgs...)
	replay := j.readJoined(replayOut, tl)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
	assert.Equal(t, joinVerdict{}, tl.check(replay), "replay")
	assert.Equal(t, first.multiset(), replay.multiset(), "the replay's outputs equal the first run's")
	live, replayed := j.recordSet(j.topics.Output), j.recordSet(replayOut)
	require.Len(t, live, 2*keys)
	assert.Equal(t, live, replayed, "the replay writes the live run's records byte for byte: key, value, timestamp, headers")

	controlArgs, controlOut := j.newGroupFrom(sp, "unaligned")
	p = j.start(t.TempDir(), append(controlArgs, "--max-idle", "-1")...)
	control := tl.check(j.readJoined(controlOut, tl))
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
	assert.Zero(t, control.lost, "control run")
	t.Logf("%d inputs: aligned %d wrong; --max-idle -1 (goka's own order) %d wrong", 2*keys, v.wrong, control.wrong)
}

// A crash in the middle of the waves, then the savepoint from before them restored with
// --scores-from cut into a new group: its outputs are those of a time-ordered run.
func TestAlignedReplayAfterCrash(t *testing.T) {
	t.Parallel()
	const keys = 1500
	j, sp := jobWithSavepoint(t)

	p := j.start(t.TempDir())
	p.waitRunning(partitions)
	tl := newTimeline()
	base := time.Now().Truncate(time.Millisecond)
	j.scoreWave(tl, keys, 1, base)
	j.inputWave(tl, keys, "a", base.Add(5*time.Millisecond))
	require.Eventually(t, func() bool { return j.endOffsets(j.topics.Output) > 0 }, 60*time.Second, 20*time.Millisecond)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
	j.scoreWave(tl, keys, 2, base.Add(10*time.Millisecond))
	j.inputWave(tl, keys, "b", base.Add(15*time.Millisecond))

	args, out := j.newGroupFrom(sp, "after-crash", "--scores-from", "cut")
	p = j.start(t.TempDir(), args...)
	got := j.readJoined(out, tl)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
	assert.Equal(t, joinVerdict{}, tl.check(got), "replay after a crash")
}

// Idle partitions: with --max-idle, inputs of a partition whose scores never get a record are
// held back about --max-idle once, not for good; a scores producer that stops does not stall
// the inputs that follow.
func TestAlignedIdleScores(t *testing.T) {
	t.Parallel()
	const maxIdle = 2 * time.Second
	j := newJob(t)
	j.createTopics(partitions)
	j.appendTimeOutput() // the wait is timed from an input's timestamp to its output's append
	p := j.start(t.TempDir(), "--max-idle", maxIdle.String())
	p.waitRunning(partitions)

	// Scores for a few keys, then the scores producer stops for good.
	tl := newTimeline()
	j.scoreWave(tl, 20, 7, time.Now())
	// Inputs for 200 keys, sent a few at a time: most of their partitions' scores are idle.
	for round := 0; round < 10; round++ {
		recs := make([]*kgo.Record, 0, 20)
		for i := round * 20; i < (round+1)*20; i++ {
			key := fmt.Sprintf("k%d", i)
			ts := time.Now()
			recs = append(recs, &kgo.Record{Key: []byte(key), Value: []byte(inputLine(key, "idle")), Timestamp: ts})
			tl.inputs[outputID{key, "idle"}] = ts
		}
		j.produceRaw(j.topics.Input, recs...)
		time.Sleep(300 * time.Millisecond)
	}
	got := j.readJoined(j.topics.Output, tl)
	assert.Equal(t, joinVerdict{}, tl.check(got))

	var worst time.Duration
	for _, r := range j.records(j.topics.Output, got.records, 10*time.Second) {
		var o codecs.Output
		require.NoError(t, json.Unmarshal(r.Value, &o))
		worst = max(worst, r.Timestamp.Sub(tl.inputs[outputID{o.Key, o.Message}]))
	}
	t.Logf("longest time from an input's timestamp to its output: %s (--max-idle %s)", worst, maxIdle)
	// A held input waits --max-idle; the slack covers a fetch and a loaded CI machine.
	assert.Less(t, worst, maxIdle+3*time.Second, "inputs held back longer than --max-idle")
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
}

// Live: scores and inputs written at once at a steady rate, stamped with the time they are
// written, three replicas, one SIGKILLed: every input gets an output whose score was valid at
// its time. --max-idle covers the two producers' skew: a score stamped before an input can
// reach the broker after it.
func TestAlignedLiveWithKill(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	v := j.liveWithKills(nil, false)
	assert.Zero(t, v.wrong, "first outputs with a score not valid at their input's time")
	assert.Zero(t, v.lost, "inputs without an output")
}
