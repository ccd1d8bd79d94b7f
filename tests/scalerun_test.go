package tests

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/internal/membudget"
)

// scaleRunKeys is the table size of TestScaleRun: ENRICHER_SCALE_KEYS, or a small form for CI.
// scripts/scale.sh runs it at 10M.
func scaleRunKeys(t *testing.T) int {
	v := os.Getenv("ENRICHER_SCALE_KEYS")
	if v == "" {
		return 200_000
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "ENRICHER_SCALE_KEYS")
	return n
}

// scaleRunMemory is every replica's --memory-limit in TestScaleRun: ENRICHER_SCALE_MEMORY, or 1GiB.
func scaleRunMemory(t *testing.T) string {
	if v := os.Getenv("ENRICHER_SCALE_MEMORY"); v != "" {
		return v
	}
	return "1GiB"
}

// The scale run: 12 partitions, one standby copy of each, every replica under --memory-limit;
// the table written through replica 1, then replicas 2, 3 and 4 join under load, then replica 2
// is SIGKILLed. It logs, per replica, the bytes its stores take on disk and its peak RSS, how
// long each joiner took to own its share and the longest stall a join or the SIGKILL caused,
// and each joiner's cold restore rate next to one franz-go client reading the same changelog.
// It asserts 0 lost and 0 wrong outputs, peak RSS under the budget, and the SIGKILL's stall
// within the session timeout and a second.
func TestScaleRun(t *testing.T) {
	keys, memory := scaleRunKeys(t), scaleRunMemory(t)
	budget, err := membudget.Parse(memory)
	require.NoError(t, err, "ENRICHER_SCALE_MEMORY")
	session := kafkaconf.Defaults().SessionTimeout
	j := newJob(t)
	j.createTopics(stateScalePartitions)
	table := j.topics.Group + "-table"
	flags := append([]string{"--standby-replicas", "1", "--memory-limit", memory}, stateFlags()...)

	// A joiner warms its share up before it owns it: up to a few seconds per 100k keys here.
	balanced := 2*time.Minute + time.Duration(keys/25_000)*time.Second
	reps := []*proc{j.start(t.TempDir(), flags...)}
	waitBalanced(t, stateScalePartitions, reps...)
	began := time.Now()
	j.scoreBulk(keys)
	// Replica 1 applies the scores at tens of thousands a second on this machine.
	j.waitChangelogFor(int64(keys), time.Minute+time.Duration(keys/20_000)*time.Second)
	t.Logf("%d keys written and applied in %s", keys, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	var read int64
	_, err = changelog.ReadTopic(context.Background(), j.kc, j.adm, table, nil, nil, func(*kgo.Record) { read++ })
	require.NoError(t, err)
	raw := float64(read) / time.Since(began).Seconds()
	t.Logf("raw read of the changelog by one franz-go client: %d records, %.0f records/s", read, raw)

	c := j.collect()
	l := j.startLoad(keys, stateLoadEvery)
	c.waitProgress(t, 300)
	for n := 2; n <= 4; n++ {
		var joiner *proc
		began := time.Now()
		stall := stallEvent(t, c, fmt.Sprintf("replica %d joins", n), func() {
			joiner = j.start(t.TempDir(), flags...)
			reps = append(reps, joiner)
			waitBalancedWithin(t, balanced, stateScalePartitions, reps...)
		})
		records, rate := coldRestoreRate(joiner)
		t.Logf("replica %d: owned its share %s after its start; longest stall %s; warm-ups from nothing: %d records at %.0f records/s, %.2fx the raw read",
			n, time.Since(began).Round(time.Millisecond), stall.Round(time.Millisecond), records, rate, rate/raw)
	}
	for i, p := range reps {
		t.Logf("replica %d: %s", i+1, p.footprint(budget))
	}

	// A failover without a restore needs standbys that are caught up: they start once the
	// warm-ups are done, so the last of them may still be reading.
	began = time.Now()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		standbys := 0
		for _, p := range reps {
			for name, lag := range scrape(t, p.webAddr()) {
				if strings.HasPrefix(name, "enricher_copy_lag{") && strings.Contains(name, `mode="standby"`) {
					standbys++
					assert.Less(c, lag, 10_000.0, "%s", name)
				}
			}
		}
		assert.Equal(c, stateScalePartitions, standbys, "one standby copy of each partition")
	}, balanced, time.Second, "the standby copies never caught up")
	t.Logf("standby copies caught up %s after the last join", time.Since(began).Round(time.Millisecond))

	victim := reps[1]
	killed := stallEvent(t, c, "replica 2 SIGKILLed, its partitions on standby copies", func() {
		victim.stop(syscall.SIGKILL)
		waitBalancedWithin(t, balanced, stateScalePartitions, reps[0], reps[2], reps[3])
	})
	assert.LessOrEqual(t, killed, session+time.Second, "SIGKILL: a partition stalled past the session timeout")

	sent := l.stop()
	v := c.wait(t, sent)
	v.report(t, sent)
	assert.Zero(t, v.noScore, "no output misses the score of its key")
	assert.Zero(t, c.wrongScores(want(keys, 0)), "outputs with a score other than their key's")
	for i, p := range []*proc{reps[0], reps[2], reps[3]} {
		t.Logf("survivor %d at the end: %s", i+1, p.footprint(budget))
		require.Equal(t, 0, p.stop(syscall.SIGTERM))
	}
}

var caughtUpRE = regexp.MustCompile(`^time=(\S+) .*msg="warm-up copy caught up" .* records=(\d+) duration=(\S+)`)

// coldRestoreRate is a joiner's restore rate: its warm-up copies start from nothing, so the
// records they applied until caught up, over the time from the first one's start to the last
// one's catching up (at most --max-warmups run at once).
func coldRestoreRate(p *proc) (int64, float64) {
	var records int64
	var first, last time.Time
	for _, line := range strings.Split(p.logs(), "\n") {
		m := caughtUpRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, err1 := time.Parse(time.RFC3339Nano, m[1])
		n, err2 := strconv.ParseInt(m[2], 10, 64)
		d, err3 := time.ParseDuration(m[3])
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		records += n
		if start := at.Add(-d); first.IsZero() || start.Before(first) {
			first = start
		}
		if at.After(last) {
			last = at
		}
	}
	if records == 0 || !last.After(first) {
		return records, 0
	}
	return records, float64(records) / last.Sub(first).Seconds()
}

// footprint reads the replica's store bytes on disk from its /metrics and its peak RSS from
// /proc, and asserts the peak is under budget.
func (p *proc) footprint(budget int64) string {
	var disk float64
	for name, v := range scrape(p.t, p.webAddr()) {
		if strings.HasPrefix(name, "enricher_store_disk_bytes{") {
			disk += v
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	require.NoError(p.t, err)
	var peak int64
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(p.t, err)
			peak = kb << 10
		}
	}
	require.NotZero(p.t, peak, "VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	assert.Less(p.t, peak, budget, "peak RSS under --memory-limit")
	return fmt.Sprintf("stores on disk %.1f MiB, peak RSS %.1f MiB (budget %s)", disk/(1<<20), float64(peak)/(1<<20), membudget.Format(budget))
}
