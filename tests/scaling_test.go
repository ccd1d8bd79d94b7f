package tests

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/kafkaconf"
)

// Proof 1: scale 1 -> 2 -> 3 -> 1 replicas under a steady input stream: every input yields an
// output, none carries -1 for a key that has a score; duplicates are reported.
func TestScaleReplicasUnderLoad(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopics(scalePartitions)
	p1 := j.start(t.TempDir())
	p1.waitRunning(scalePartitions)
	j.scoreRound(60, 1000)
	j.waitChangelog(60)
	c := j.collect()
	l := j.startLoad(60, 10*time.Millisecond)
	c.waitProgress(t, 100)

	p2 := j.start(t.TempDir())
	waitBalanced(t, scalePartitions, p1, p2)
	c.waitProgress(t, 100)
	p3 := j.start(t.TempDir())
	waitBalanced(t, scalePartitions, p1, p2, p3)
	c.waitProgress(t, 100)
	require.Equal(t, 0, p3.stop(syscall.SIGTERM))
	require.Equal(t, 0, p2.stop(syscall.SIGTERM))
	waitBalanced(t, scalePartitions, p1)
	c.waitProgress(t, 100)

	sent := l.stop()
	v := c.wait(t, sent)
	v.report(t, sent)
	assert.Zero(t, v.noScore, "no output misses the score of its key")
	for _, p := range []*proc{p1, p2, p3} {
		assert.Contains(t, p.logs(), "partition restored", "each replica logged its restores")
	}
}

// Proof 2: SIGKILL one of three replicas under load, with and without --standby: every input
// still yields a scored output; the time until the victim's partitions process again is
// reported for both modes.
func TestKillReplicaUnderLoad(t *testing.T) {
	t.Parallel()
	for _, standby := range []bool{false, true} {
		t.Run(fmt.Sprintf("standby=%v", standby), func(t *testing.T) {
			j := newJob(t)
			j.createTopics(scalePartitions)
			var extra []string
			if standby {
				extra = append(extra, "--standby")
			}
			reps := []*proc{j.start(t.TempDir(), extra...), j.start(t.TempDir(), extra...), j.start(t.TempDir(), extra...)}
			waitBalanced(t, scalePartitions, reps...)
			j.scoreRound(60, 1000)
			j.waitChangelog(60)
			c := j.collect()
			l := j.startLoad(60, 10*time.Millisecond)
			c.waitProgress(t, 200)

			victim := reps[1]
			owned := victim.assigned()
			t0 := time.Now()
			victim.stop(syscall.SIGKILL)
			var resumed time.Time
			require.Eventually(t, func() bool {
				var ok bool
				resumed, ok = c.firstAfter(t0, owned)
				return ok
			}, 120*time.Second, 50*time.Millisecond, "the victim's partitions %v never processed again", owned)
			waitBalanced(t, scalePartitions, reps[0], reps[2])
			c.waitProgress(t, 100)

			sent := l.stop()
			v := c.wait(t, sent)
			v.report(t, sent)
			t.Logf("standby=%v: partitions %v of the killed replica processed again %s after SIGKILL",
				standby, keys(owned), resumed.Sub(t0).Round(time.Millisecond))
			assert.Zero(t, v.noScore, "no output misses the score of its key")
		})
	}
}

// Issue 11's proof: per-partition stalls under a steady load while replicas join and leave,
// and when one is killed. A graceful change of membership stops no partition for a second; a
// SIGKILL costs the session timeout and at most a second more.
func TestScalingStalls(t *testing.T) {
	t.Parallel()
	session := kafkaconf.Defaults().SessionTimeout // the defaults are what is proven
	j := newJob(t)
	j.createTopics(scalePartitions)
	var flags []string
	p1 := j.start(t.TempDir(), flags...)
	p1.waitRunning(scalePartitions)
	j.scoreRound(600, 1000)
	j.waitChangelog(600)
	c := j.collect()
	l := j.startLoad(600, 10*time.Millisecond)
	c.waitProgress(t, 300)

	// 1 -> 2 -> 3 -> 2 -> 1 replicas, graceful; then 3 again, and one of them is killed.
	stalls := map[string]time.Duration{}
	graceful := func(name string, event func()) { stalls[name] = stallEvent(t, c, name, event) }
	var p2, p3 *proc
	graceful("replica 2 joins", func() {
		p2 = j.start(t.TempDir(), flags...)
		waitBalanced(t, scalePartitions, p1, p2)
	})
	graceful("replica 3 joins", func() {
		p3 = j.start(t.TempDir(), flags...)
		waitBalanced(t, scalePartitions, p1, p2, p3)
	})
	graceful("replica 3 leaves (SIGTERM)", func() {
		require.Equal(t, 0, p3.stop(syscall.SIGTERM))
		waitBalanced(t, scalePartitions, p1, p2)
	})
	graceful("replica 2 leaves (SIGTERM)", func() {
		require.Equal(t, 0, p2.stop(syscall.SIGTERM))
		waitBalanced(t, scalePartitions, p1)
	})
	p2, p3 = j.start(t.TempDir(), flags...), j.start(t.TempDir(), flags...)
	waitBalanced(t, scalePartitions, p1, p2, p3)
	c.waitProgress(t, 300)
	killed := stallEvent(t, c, "replica 2 SIGKILLed", func() {
		p2.stop(syscall.SIGKILL)
		waitBalanced(t, scalePartitions, p1, p3)
	})

	sent := l.stop()
	v := c.wait(t, sent)
	v.report(t, sent)
	assert.Zero(t, v.noScore, "no output misses the score of its key")
	for name, s := range stalls {
		assert.Less(t, s, time.Second, "%s: a partition stalled", name)
	}
	assert.LessOrEqual(t, killed, session+time.Second, "SIGKILL: a partition stalled past the session timeout")
	assert.Zero(t, c.wrongScores(want(600, 1000)), "outputs with a score other than their key's")
	require.Equal(t, 0, p1.stop(syscall.SIGTERM))
	require.Equal(t, 0, p3.stop(syscall.SIGTERM))
}

// scoreBulk writes one score for each of keys k0..k(n-1), score = index, in batches.
func (j *job) scoreBulk(n int) {
	j.t.Helper()
	partitions := j.partitions(j.topics.Scores)
	const batch = 20_000
	for lo := 0; lo < n; lo += batch {
		recs := make([]*kgo.Record, 0, batch)
		for i := lo; i < min(n, lo+batch); i++ {
			key := fmt.Sprintf("k%d", i)
			r := &kgo.Record{Topic: j.topics.Scores, Key: []byte(key), Value: []byte(scoreLine(key, i))}
			j.kc.PartitionRecord(r, partitions)
			recs = append(recs, r)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		require.NoError(j.t, j.cl.ProduceSync(ctx, recs...).FirstErr())
		cancel()
	}
}
