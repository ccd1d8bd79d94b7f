package tests

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var assignedRE = regexp.MustCompile(`msg="partitions assigned".*partitions="?\[([0-9 ]*)\]`)

// assigned returns the partitions of the replica's latest assignment.
func (p *proc) assigned() map[int]bool {
	out := map[int]bool{}
	matches := assignedRE.FindAllStringSubmatch(p.logs(), -1)
	if len(matches) == 0 {
		return out
	}
	for _, f := range strings.Fields(matches[len(matches)-1][1]) {
		n, _ := strconv.Atoi(f)
		out[n] = true
	}
	return out
}

// waitBalanced waits until the replicas' latest assignments split all partitions between them.
func waitBalanced(t *testing.T, partitions int, replicas ...*proc) {
	t.Helper()
	require.Eventually(t, func() bool {
		seen := map[int]int{}
		for _, r := range replicas {
			a := r.assigned()
			if len(a) == 0 {
				return false
			}
			for p := range a {
				seen[p]++
			}
		}
		if len(seen) != partitions {
			return false
		}
		for _, n := range seen {
			if n != 1 {
				return false
			}
		}
		return true
	}, 120*time.Second, 100*time.Millisecond, "replicas never split the %d partitions", partitions)
}

// waitProgress waits until n more outputs arrived: processing goes on.
func (c *collector) waitProgress(t *testing.T, n int) {
	t.Helper()
	base := len(c.snapshot())
	require.Eventually(t, func() bool { return len(c.snapshot()) >= base+n }, 120*time.Second, 100*time.Millisecond,
		"outputs stopped")
}

func (v verdict) report(t *testing.T, sent int) {
	t.Logf("inputs %d, outputs for %d of them, duplicates %d, outputs with -1 %d, longest gap between outputs %s",
		sent, v.unique, v.duplicates, v.noScore, v.longestGap.Round(time.Millisecond))
}

const scalePartitions = 6

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

func keys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}
