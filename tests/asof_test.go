package tests

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The as-of join (--join as-of): scores written out of timestamp order, then inputs stamped
// between them, get the score valid at their time; so do the same inputs after a SIGKILL and a
// wiped state directory, and in a new group restored from a savepoint. --join latest, the
// control, gives the score read last.
func TestAsOfJoin(t *testing.T) {
	t.Parallel()
	const keys = 300
	j := newJob(t)
	j.createTopics(partitions)
	asOf := []string{"--join", "as-of", "--score-history", "1h"}
	state := t.TempDir()
	p := j.start(state, asOf...)
	p.waitRunning(partitions)

	tl := newTimeline()
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Millisecond)
	j.scoreWave(tl, keys, 30, base.Add(30*time.Second))
	j.scoreWave(tl, keys, 10, base.Add(10*time.Second)) // written after the later-stamped score
	j.scoreWave(tl, keys, 20, base.Add(20*time.Second))
	j.waitChangelog(3 * keys)
	stamps := []time.Time{base.Add(5 * time.Second), base.Add(15 * time.Second), base.Add(25 * time.Second), base.Add(35 * time.Second)}
	j.asOfRound(tl, keys, "first", stamps...)
	got := j.readJoined(j.topics.Output, tl.onlyTagged("first"))
	assert.Equal(t, joinVerdict{}, tl.onlyTagged("first").check(got), "as-of answers")

	// SIGKILL, a wiped state directory: the history comes back from the changelog.
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
	require.NoError(t, os.RemoveAll(state))
	p = j.start(state, asOf...)
	p.waitRunning(partitions)
	j.asOfRound(tl, keys, "wiped", stamps...)
	assert.Equal(t, joinVerdict{}, tl.onlyTagged("wiped").check(j.readJoined(j.topics.Output, tl.onlyTagged("wiped"))),
		"after SIGKILL and a wiped state directory")
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	// A savepoint now, restored into a new group: its table keeps the history.
	sp := t.TempDir() + "/sp.json"
	j.savepoint(sp)
	args, out := j.newGroupFrom(sp, "restored", "--scores-from", "end")
	p = j.start(t.TempDir(), append(args, asOf...)...)
	p.waitRunning(partitions)
	j.asOfRound(tl, keys, "restored", stamps...)
	restored := tl.onlyTagged("restored")
	assert.Equal(t, joinVerdict{}, restored.check(j.readJoined(out, restored)), "in a group restored from a savepoint")
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	// The control: the latest-score join gives every input the score read last (20).
	args, out = j.newGroupFrom(sp, "latest", "--scores-from", "end")
	p = j.start(t.TempDir(), args...)
	p.waitRunning(partitions)
	j.asOfRound(tl, keys, "latest", stamps...)
	latest := tl.onlyTagged("latest")
	control := latest.check(j.readJoined(out, latest))
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
	assert.Zero(t, control.lost)
	assert.Equal(t, 3*keys, control.wrong, "--join latest: all but the inputs stamped between 20 and 30 get a score not valid at their time")
}

// Outside the history window: versions older than the newest minus --score-history are dropped
// but for the one valid at the window's start; an input stamped before the oldest kept version
// gets -1.
func TestAsOfHistoryWindow(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopics(partitions)
	p := j.start(t.TempDir(), "--join", "as-of", "--score-history", "1h")
	p.waitRunning(partitions)
	now := time.Now().Truncate(time.Millisecond)
	for _, s := range []struct {
		score int
		ts    time.Time
	}{{100, now}, {50, now.Add(-3 * time.Hour)}, {60, now.Add(-150 * time.Minute)}} {
		j.produceRaw(j.topics.Scores, &kgo.Record{Key: []byte("k0"), Value: []byte(scoreLine("k0", s.score)), Timestamp: s.ts})
	}
	j.waitChangelog(3)
	tl := newTimeline()
	for i, ts := range []time.Time{now.Add(-2 * time.Hour), now.Add(-165 * time.Minute), now.Add(time.Minute)} {
		j.inputWave(tl, 1, fmt.Sprintf("w%d", i), ts)
	}
	got := j.readJoined(j.topics.Output, tl)
	assert.Equal(t, []int64{60}, got.outputs[outputID{"k0", "w0"}], "the score valid at the window's start is kept")
	assert.Equal(t, []int64{-1}, got.outputs[outputID{"k0", "w1"}], "before the oldest kept version: its score was dropped")
	assert.Equal(t, []int64{100}, got.outputs[outputID{"k0", "w2"}])
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
}
