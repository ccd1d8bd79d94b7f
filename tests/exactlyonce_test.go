package tests

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/twmb/franz-go/pkg/kgo"
)

// exactlyOnce are the flags of a replica under exactly-once.
var exactlyOnce = []string{"--guarantee", "exactly-once"}

// committed reads as read_committed consumers do: what aborted transactions wrote is never seen.
var committed = kgo.FetchIsolationLevel(kgo.ReadCommitted())

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

// Ten SIGKILLs of a replica under a steady load, each replica restarted on its state
// directory: a read_committed reader sees every input once, with the right score.
func TestExactlyOnceKills(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopics(scalePartitions)
	dirs := []string{t.TempDir(), t.TempDir()}
	reps := []*proc{j.start(dirs[0], exactlyOnce...), j.start(dirs[1], exactlyOnce...)}
	waitBalanced(t, scalePartitions, reps...)
	j.scoreRound(60, 1000)
	j.waitChangelog(60)
	c := j.collect(committed)
	l := j.startLoad(60, 5*time.Millisecond)
	c.waitProgress(t, 200)
	for i := 0; i < 10; i++ {
		victim := i % 2
		reps[victim].stop(syscall.SIGKILL)
		reps[victim] = j.start(dirs[victim], exactlyOnce...)
		waitBalanced(t, scalePartitions, reps...)
		c.waitProgress(t, 100)
		t.Logf("kill %d of replica %d: balanced again", i+1, victim)
	}
	sent := l.stop()
	eosVerdict(t, c, sent, want(60, 1000))
}
