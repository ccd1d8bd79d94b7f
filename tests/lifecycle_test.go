package tests

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/topology"
)

// Proof 3: scores v1, savepoint, scores v2, restore as a new group: its table equals v1 and
// inputs sent after the restore get v1 scores; the old group still has v2.
func TestSavepointRestoreAsNewVersion(t *testing.T) {
	t.Parallel()
	j, p, _ := runningJob(t)
	j.scoreRound(30, 0)
	j.waitChangelog(30)
	sp := filepath.Join(t.TempDir(), "sp.json")
	j.savepoint(sp)
	j.scoreRound(30, 1000)
	j.waitChangelog(60)

	next := j.topics
	next.Group, next.Output = j.topics.Group+"-v2", j.topics.Output+"-v2"
	t.Cleanup(func() { _, _ = j.adm.DeleteTopics(context.Background(), next.Table(), next.DLQ(), next.Output) })
	j.createTopic(next.Output, partitions)
	code, stdout, stderr := j.enricher("", "savepoint", "restore", sp, "--brokers", brokers, "--group", next.Group,
		"--input", next.Input, "--scores", next.Scores, "--output", next.Output, "--scores-from", "end")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "(new version): 30 keys; wrote 30 values and 0 tombstones")

	assert.Equal(t, want(30, 0), j.dump(next.Group), "the new group's table is v1")
	code, stdout, stderr = j.enricher("", "table", "get", "k7", "--brokers", brokers, "--group", next.Group, "--log-level", "warn")
	require.Equal(t, 0, code, stderr)
	assert.JSONEq(t, `{"key":"k7","score":7}`, stdout, "the new table, read from its changelog")

	nextArgs := []string{"--group", next.Group, "--output", next.Output}
	state2 := t.TempDir()
	p2 := j.start(state2, nextArgs...)
	p2.waitRunning(partitions)
	assert.Equal(t, want(30, 0), j.enrichOn(next.Output, 30, "after-restore"), "the new version enriches with v1")
	assert.Equal(t, want(30, 1000), j.enrichOn(j.topics.Output, 30, "after-restore"), "the old group still has v2")
	assert.Equal(t, want(30, 1000), j.dump(j.topics.Group))

	// table get from a running replica, and from a stopped one's store: one key, no partition read.
	code, stdout, stderr = j.enricher("", "table", "get", "k7", "--from-replica", p2.webAddr())
	require.Equal(t, 0, code, stderr)
	assert.JSONEq(t, `{"key":"k7","score":7}`, stdout, "the replica's answer")
	code, _, stderr = j.enricher("", "table", "get", "nobody", "--from-replica", p2.webAddr())
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `key "nobody" has no score`)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
	require.Equal(t, 0, p2.stop(syscall.SIGTERM))
	code, stdout, stderr = j.enricher("", "table", "get", "k7", "--from-state-dir", state2, "--brokers", brokers, "--group", next.Group)
	require.Equal(t, 0, code, stderr)
	assert.JSONEq(t, `{"key":"k7","score":7}`, stdout, "the stopped replica's store")
}

// Proof 4: the same, restored into the same group (a rollback): the group's table equals v1,
// also on a replica whose local store had seen v2; a key only v2 had is deleted.
func TestSavepointRollbackInPlace(t *testing.T) {
	t.Parallel()
	j, p, state := runningJob(t)
	j.scoreRound(30, 0)
	j.waitChangelog(30)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
	sp := filepath.Join(t.TempDir(), "sp.json")
	j.savepoint(sp)
	code, stdout, _ := j.enricher("", "savepoint", "show", sp)
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "exact (no replica was running)")

	p = j.start(state)
	p.waitRunning(partitions)
	j.scoreRound(30, 1000)
	j.produce("score", scoreLine("only-in-v2", 5))
	j.waitChangelog(61)
	assert.Equal(t, int64(1005), j.enrichOn(j.topics.Output, 30, "v2")["k5"], "the local store has seen v2")

	code, _, stderr := j.enricher("", append([]string{"savepoint", "restore", sp}, j.topicArgs()...)...)
	require.Equal(t, 1, code, "a rollback is refused while the group has live members")
	assert.Contains(t, stderr, "live members")
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	args := append([]string{"savepoint", "restore", sp, "--scores-from", "end"}, j.topicArgs()...)
	code, stdout, stderr = j.enricher("", args...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "(rollback): 30 keys; wrote 30 values and 1 tombstones")
	assert.Equal(t, want(30, 0), j.dump(j.topics.Group))

	p = j.start(state) // the same state directory: its store had v2
	p.waitRunning(partitions)
	p.waitLog(time.Second, "partition restored", "warm=true")
	assert.Equal(t, want(30, 0), j.enrichOn(j.topics.Output, 30, "after-rollback"))
	j.produce("input", inputLine("only-in-v2", "after-rollback-2"))
	require.Eventually(t, func() bool {
		for _, r := range j.records(j.topics.Output, 1<<20, 2*time.Second) {
			var o codecs.Output
			if json.Unmarshal(r.Value, &o) == nil && o.Message == "after-rollback-2" {
				return o.Score == codecs.NoScore
			}
		}
		return false
	}, 30*time.Second, 500*time.Millisecond, "a key only v2 had has no score after the rollback")
}

// Proof 5: `replay --dump` equals the expected table after compaction ran on the changelog; a
// store built with `replay --rebuild` makes the next run restore no records.
func TestReplayAfterCompactionAndRebuild(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	code, _, stderr := j.enricher("", append([]string{"topics", "create", "--partitions", "2", "--table-config",
		"segment.ms=100,min.cleanable.dirty.ratio=0.01,min.compaction.lag.ms=0,delete.retention.ms=100"}, j.topicArgs()...)...)
	require.Equal(t, 0, code, stderr)
	p := j.start(t.TempDir())
	p.waitRunning(2)
	for round := 0; round < 5; round++ {
		j.scoreRound(50, round*100)
	}
	j.produce("score", `{"key":"k3","score":null}`, `{"key":"k4","score":null}`)
	j.waitChangelog(252)
	expected := want(50, 400)
	delete(expected, "k3")
	delete(expected, "k4")

	// The active segment is never cleaned: roll it by appending after segment.ms, until the
	// cleaner has removed superseded records (fewer records readable than the end offsets say).
	require.Eventually(t, func() bool {
		j.produce("score", scoreLine("k0", 400))
		return len(j.records(j.topics.Table(), 1<<20, 2*time.Second)) < int(j.endOffsets(j.topics.Table()))-100
	}, 90*time.Second, time.Second, "the changelog was never compacted")
	assert.Equal(t, expected, j.dump(j.topics.Group))
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	rebuilt := filepath.Join(t.TempDir(), "rebuilt")
	code, _, stderr = j.enricher("", "replay", "--rebuild", rebuilt, "--brokers", brokers, "--group", j.topics.Group)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "rebuilt 2 partitions")
	code, _, stderr = j.enricher("", "replay", "--rebuild", rebuilt, "--brokers", brokers, "--group", j.topics.Group)
	assert.Equal(t, 1, code, "an existing store is not overwritten")
	assert.Contains(t, stderr, "already exists")

	p = j.start(rebuilt)
	p.waitRunning(2)
	for _, line := range p.waitRestores(2) {
		assert.Contains(t, line, "records=0 ", "a rebuilt store restores nothing: %s", line)
		assert.Contains(t, line, "warm=true", line)
	}
	assert.Equal(t, want(3, 400)["k2"], j.enrichOn(j.topics.Output, 3, "after-rebuild")["k2"])
}

// Proof 6: bad savepoint files are refused and change nothing.
func TestBadSavepointsAreRefused(t *testing.T) {
	t.Parallel()
	j, p, _ := runningJob(t)
	j.scoreRound(10, 0)
	j.waitChangelog(10)
	j.produce("input", inputLine("k1", "a"), inputLine("k2", "b"))
	j.records(j.topics.Output, 2, 30*time.Second)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	j.savepoint(good)
	raw, err := os.ReadFile(good)
	require.NoError(t, err)

	edit := func(name string, fn func(m map[string]any)) string {
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m))
		fn(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, b, 0o644))
		return path
	}
	malformed := filepath.Join(dir, "malformed.json")
	require.NoError(t, os.WriteFile(malformed, raw[:len(raw)/2], 0o644))
	otherTopics := edit("other.json", func(m map[string]any) { m["input"].(map[string]any)["name"] = "someone-elses-input" })
	tooFewOffsets := edit("short.json", func(m map[string]any) { m["scores"].(map[string]any)["offsets"] = []int{0} })
	future := edit("future.json", func(m map[string]any) { m["format"] = 2 })

	next := j.topics.Group + "-next"
	restore := func(file string) (int, string) {
		args := []string{"savepoint", "restore", file, "--brokers", brokers, "--group", next,
			"--input", j.topics.Input, "--scores", j.topics.Scores, "--output", j.topics.Output}
		code, _, stderr := j.enricher("", args...)
		return code, stderr
	}
	for _, tc := range []struct{ file, want string }{
		{malformed, "invalid savepoint"},
		{otherTopics, "someone-elses-input"},
		{tooFewOffsets, "has 1 offsets for 4 partitions"},
		{future, "format 2"},
	} {
		code, stderr := restore(tc.file)
		assert.Equal(t, 1, code, tc.file)
		assert.Contains(t, stderr, tc.want, tc.file)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %s", stderr)
	}

	// Retention removed the records at the savepoint's input offsets: one more input lands
	// after the committed offset of its partition, then every partition is deleted up to its end.
	j.produce("input", inputLine("k1", "c"))
	deleteTo := kadm.Offsets{}
	ends, err := j.adm.ListEndOffsets(context.Background(), j.topics.Input)
	require.NoError(t, err)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			deleteTo.AddOffset(j.topics.Input, o.Partition, o.Offset, -1)
		}
	})
	_, err = j.adm.DeleteRecords(context.Background(), deleteTo)
	require.NoError(t, err)
	code, stderr := restore(good)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no longer exists")

	// Nothing was written: the new group has no offsets and no table.
	committed, err := j.adm.FetchOffsets(context.Background(), next)
	require.NoError(t, err)
	n := 0
	committed.Each(func(o kadm.OffsetResponse) {
		if o.At >= 0 {
			n++
		}
	})
	assert.Zero(t, n, "no offsets committed for the new group")
	cluster, err := j.kc.Cluster()
	require.NoError(t, err)
	_, err = topology.PartitionCount(context.Background(), cluster, next+"-table")
	assert.ErrorIs(t, err, topology.ErrMissingTopic, "no table topic created")
}

// A savepoint older than its table's min.compaction.lag.ms (--savepoint-retention) is refused by
// show, restore and replay --until, with the reason: the log cleaner may have removed values its
// cut needs, and a key restored without them would lose its score.
func TestSavepointOlderThanCompactionLagIsRefused(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	const retention = 4 * time.Second
	code, _, stderr := j.enricher("", append([]string{"topics", "create", "--partitions", "2", "--savepoint-retention", retention.String()}, j.topicArgs()...)...)
	require.Equal(t, 0, code, stderr)
	p := j.start(t.TempDir())
	p.waitRunning(2)
	j.scoreRound(10, 0)
	j.waitChangelog(10)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	sp := filepath.Join(t.TempDir(), "sp.json")
	taken := time.Now()
	j.savepoint(sp)
	code, stdout, stderr := j.enricher("", "savepoint", "show", sp)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "usable until:")
	assert.Contains(t, stdout, "table min.compaction.lag.ms=4000 when taken")

	time.Sleep(time.Until(taken.Add(retention + 500*time.Millisecond)))
	for _, args := range [][]string{
		{"savepoint", "show", sp},
		append([]string{"savepoint", "restore", sp}, j.topicArgs()...),
		{"replay", "--dump", "--until", sp, "--brokers", j.brokers, "--group", j.topics.Group},
	} {
		code, _, stderr := j.enricher("", args...)
		assert.Equal(t, 1, code, "%v: %s", args[:2], stderr)
		assert.Contains(t, stderr, "savepoint older than the changelog's compaction lag", args[:2])
		assert.Contains(t, stderr, "min.compaction.lag.ms=4000", args[:2])
	}
}
