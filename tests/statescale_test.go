package tests

import (
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/internal/kafkaconf"
)

// stateScalePartitions is the partition count of the state scale-out tests.
const stateScalePartitions = 12

// stateLoadEvery spaces the inputs of the state scale-out tests: 250 a second, about 20 per
// partition, so the time between two outputs of a partition, which a stall measured from the
// outputs includes, stays well under the stalls measured.
const stateLoadEvery = 4 * time.Millisecond

// stateFlags make the tests' replicas delete stores they no longer use within seconds.
func stateFlags() []string { return []string{"--state-cleanup-delay", "2s"} }

// storesOnDisk returns the partitions whose store the state directory holds (quarantined
// stores, which carry a suffix, not counted).
func storesOnDisk(t *testing.T, stateDir, table string) []int {
	t.Helper()
	entries, err := os.ReadDir(stateDir)
	require.NoError(t, err)
	var out []int
	for _, e := range entries {
		num, ok := strings.CutPrefix(e.Name(), table+".")
		if p, err := strconv.Atoi(num); ok && e.IsDir() && err == nil {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// copies returns the partitions the replica keeps copies of, by mode ("standby", "warm-up"),
// as its /api/replica lists them.
func (p *proc) copies(token string) map[string][]int {
	var v struct {
		Partitions []struct {
			Partition int    `json:"partition"`
			Mode      string `json:"mode"`
		} `json:"partitions"`
	}
	out := map[string][]int{}
	if call(p.t, p.webAddr(), "/api/replica", token, &v) != 200 {
		return out
	}
	for _, pv := range v.Partitions {
		out[pv.Mode] = append(out[pv.Mode], pv.Partition)
	}
	return out
}

func sortedKeys(m map[int]bool) []int {
	out := keys(m)
	sort.Ints(out)
	return out
}

var restoredRE = regexp.MustCompile(`msg="partition restored" topic=\S+ partition=(\d+) records=(\d+) .* warm=(\w+)`)

var restoreDurationRE = regexp.MustCompile(`msg="partition restored" .* duration=(\S+)`)

// longestRestoreSince returns the longest duration among the "partition restored" lines after the
// first skip lines of the process's log (the restores of one rebalance run at once).
func (p *proc) longestRestoreSince(skip int) time.Duration {
	var longest time.Duration
	lines := p.restoreLines()
	for _, line := range lines[min(skip, len(lines)):] {
		if m := restoreDurationRE.FindStringSubmatch(line); m != nil {
			d, err := time.ParseDuration(m[1])
			require.NoError(p.t, err, line)
			longest = max(longest, d)
		}
	}
	return longest
}

// restoresSince returns, per partition, the records each "partition restored" line after the
// first skip lines of the process's log says were restored, and whether the store was warm.
func (p *proc) restoresSince(skip int) (records map[int]int64, cold []int) {
	records = map[int]int64{}
	lines := p.restoreLines()
	for _, line := range lines[min(skip, len(lines)):] {
		m := restoredRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		part, _ := strconv.Atoi(m[1])
		n, _ := strconv.ParseInt(m[2], 10, 64)
		records[part] += n
		if m[3] != "true" {
			cold = append(cold, part)
		}
	}
	return records, cold
}

// The state scale-out issue's proof at 1M keys, without standby copies: replicas join under
// load and each restores only its share (by warm-up copies, while the owner goes on), no
// partition stalls for a second; settled, each state directory holds exactly the partitions
// its replica owns; a replica restarted with its directory gets its partitions back and
// restores only what it missed; a SIGKILL costs the session timeout and a second at most.
func TestStateScalesOut(t *testing.T) {
	const tableKeys = 1_000_000
	session := kafkaconf.Defaults().SessionTimeout
	j := newJob(t)
	j.createTopics(stateScalePartitions)
	table := j.topics.Group + "-table"
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	p1 := j.start(dirs[0], stateFlags()...)
	p1.waitRunning(stateScalePartitions)
	j.scoreBulk(tableKeys)
	j.waitChangelog(tableKeys)
	c := j.collect()
	l := j.startLoad(tableKeys, stateLoadEvery)
	c.waitProgress(t, 300)

	var p2, p3 *proc
	joined2 := stallEvent(t, c, "replica 2 joins a 1M-key table", func() {
		p2 = j.start(dirs[1], stateFlags()...)
		waitBalanced(t, stateScalePartitions, p1, p2)
	})
	joined3 := stallEvent(t, c, "replica 3 joins", func() {
		p3 = j.start(dirs[2], stateFlags()...)
		waitBalanced(t, stateScalePartitions, p1, p2, p3)
	})
	t.Log(strings.Join(p2.restoreLines(), "\n"))
	assert.Less(t, joined2, time.Second, "a partition stalled while replica 2 joined")
	assert.Less(t, joined3, time.Second, "a partition stalled while replica 3 joined")
	// A joiner reads its share of the changelog (half the table for replica 2, a third for
	// replica 3), not the table: copies and restores together, a partition's worth of slack.
	for i, p := range []*proc{p2, p3} {
		assert.Contains(t, p.logs(), "warm-up copy caught up", "replica %d warmed its share up before taking it", i+2)
		m := scrape(t, p.webAddr())
		read := m["enricher_changelog_records_replicated_total"] + m["enricher_changelog_records_restored_total"]
		share := float64(tableKeys) / float64(i+2)
		t.Logf("replica %d read %.0f changelog records joining (its share: %.0f of %d)", i+2, read, share, tableKeys)
		assert.Greater(t, read, share*0.9, "replica %d restored its share", i+2)
		assert.LessOrEqual(t, read, share+float64(tableKeys/stateScalePartitions), "replica %d read more than its share of the changelog", i+2)
	}

	// Settled: each state directory holds exactly its replica's partitions.
	reps := []*proc{p1, p2, p3}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		for i, p := range reps {
			assert.Equal(ct, sortedKeys(p.assigned()), storesOnDisk(t, dirs[i], table), "replica %d's state directory", i+1)
		}
	}, 90*time.Second, 500*time.Millisecond)

	// Restart replica 3 with its state directory: the same partitions, only the gap restored.
	owned3 := p3.assigned()
	require.Equal(t, 0, p3.stop(syscall.SIGTERM))
	waitBalanced(t, stateScalePartitions, p1, p2)
	c.waitProgress(t, 300)
	p3 = j.start(dirs[2], stateFlags()...)
	waitBalanced(t, stateScalePartitions, p1, p2, p3)
	assert.Equal(t, owned3, p3.assigned(), "the restarted replica got its partitions back")
	p3.waitRestores(len(owned3))
	restored, cold := p3.restoresSince(0)
	assert.Empty(t, cold, "no partition restored from nothing")
	for part, n := range restored {
		assert.Less(t, n, int64(tableKeys/stateScalePartitions/2), "partition %d: the restart restored more than the gap", part)
	}
	t.Logf("replica 3 restarted: restored %v records per partition", restored)

	// Without standby copies the survivors restore the victim's partitions from the changelog
	// (their unused stores were deleted 2 s after they moved away): the stall is the session
	// timeout, the restore, and a second at most. TestStandbyReplicas proves the failover with
	// no restore.
	before := []int{len(p1.restoreLines()), len(p3.restoreLines())}
	killed := stallEvent(t, c, "replica 2 SIGKILLed", func() {
		p2.stop(syscall.SIGKILL)
		waitBalanced(t, stateScalePartitions, p1, p3)
	})
	restore := max(p1.longestRestoreSince(before[0]), p3.longestRestoreSince(before[1]))
	t.Logf("SIGKILL without standby copies: the survivors' longest restore took %s", restore)
	assert.LessOrEqual(t, killed-restore, session+time.Second, "SIGKILL: a partition stalled past the session timeout and its restore")

	sent := l.stop()
	v := c.wait(t, sent)
	v.report(t, sent)
	assert.Zero(t, v.noScore, "no output misses the score of its key")
	assert.Zero(t, c.wrongScores(want(tableKeys, 0)), "outputs with a score other than their key's")
	require.Equal(t, 0, p1.stop(syscall.SIGTERM))
	require.Equal(t, 0, p3.stop(syscall.SIGTERM))
}

// With --standby-replicas 1 at 1M keys: settled, every partition is on exactly two replicas,
// never active and standby on one, and the state directories hold exactly that; a SIGKILL of
// an owner moves its partitions to their standby copies: no restore from nothing, a stall of
// the session timeout and a second at most.
func TestStandbyReplicas(t *testing.T) {
	const tableKeys = 1_000_000
	session := kafkaconf.Defaults().SessionTimeout
	j := newJob(t)
	j.createTopics(stateScalePartitions)
	table := j.topics.Group + "-table"
	flags := append([]string{"--standby-replicas", "1"}, stateFlags()...)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var reps []*proc
	for _, d := range dirs {
		reps = append(reps, j.start(d, flags...))
	}
	waitBalanced(t, stateScalePartitions, reps...)
	j.scoreBulk(tableKeys)
	j.waitChangelog(tableKeys)
	c := j.collect()
	l := j.startLoad(tableKeys, stateLoadEvery)
	c.waitProgress(t, 300)

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		holders := map[int]int{}
		for i, p := range reps {
			active, standby := sortedKeys(p.assigned()), p.copies("")["standby"]
			sort.Ints(standby)
			for _, part := range active {
				assert.NotContains(ct, standby, part, "replica %d: partition %d active and standby", i+1, part)
			}
			both := append(append([]int{}, active...), standby...)
			sort.Ints(both)
			assert.Equal(ct, both, storesOnDisk(t, dirs[i], table), "replica %d's state directory: its active and standby partitions", i+1)
			for _, part := range both {
				holders[part]++
			}
		}
		assert.Len(ct, holders, stateScalePartitions)
		for part, n := range holders {
			assert.Equal(ct, 2, n, "replicas holding partition %d", part)
		}
	}, 120*time.Second, 500*time.Millisecond, "settled with one standby copy of each partition")

	victim := reps[1]
	owned := victim.assigned()
	before := []int{len(reps[0].restoreLines()), len(reps[2].restoreLines())}
	killed := stallEvent(t, c, "an owner SIGKILLed, its partitions on standby copies", func() {
		victim.stop(syscall.SIGKILL)
		waitBalanced(t, stateScalePartitions, reps[0], reps[2])
	})
	assert.LessOrEqual(t, killed, session+time.Second, "SIGKILL: a partition stalled past the session timeout")
	for i, p := range []*proc{reps[0], reps[2]} {
		restored, cold := p.restoresSince(before[i])
		assert.Empty(t, cold, "a survivor restored a partition from nothing")
		for part, n := range restored {
			if owned[part] {
				assert.Less(t, n, int64(10_000), "partition %d of the victim: more than a standby's lag restored", part)
			}
		}
		t.Logf("survivor restored %v records per partition after the SIGKILL (victim had %v)", restored, keys(owned))
	}

	sent := l.stop()
	v := c.wait(t, sent)
	v.report(t, sent)
	assert.Zero(t, v.noScore, "no output misses the score of its key")
	assert.Zero(t, c.wrongScores(want(tableKeys, 0)), "outputs with a score other than their key's")
	require.Equal(t, 0, reps[0].stop(syscall.SIGTERM))
	require.Equal(t, 0, reps[2].stop(syscall.SIGTERM))
}
