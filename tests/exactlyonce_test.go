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

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/savepoint"
)

// Ten SIGKILLs of a replica under a steady load, each replica restarted on its state
// directory: a read_committed reader sees every input once, with the right score, and every
// bad input's dead letter once. The same run at-least-once is the control: it has duplicates.
func TestExactlyOnceKills(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		guarantee string
		kills     int
	}{{"exactly-once", 10}, {"at-least-once", 3}} {
		t.Run(tc.guarantee, func(t *testing.T) {
			t.Parallel()
			j := eosJob(t)
			flags := []string{"--guarantee", tc.guarantee}
			j.createTopics(scalePartitions)
			dirs := []string{t.TempDir(), t.TempDir()}
			reps := []*proc{j.start(dirs[0], flags...), j.start(dirs[1], flags...)}
			waitBalanced(t, scalePartitions, reps...)
			c, l := j.steadyLoad(200)
			bad := j.startBadInputs(100 * time.Millisecond)
			for i := 0; i < tc.kills; i++ {
				victim := i % 2
				reps[victim].stop(syscall.SIGKILL)
				reps[victim] = j.start(dirs[victim], flags...)
				waitBalanced(t, scalePartitions, reps...)
				c.waitProgress(t, 100)
			}
			sent, badSent := l.stop(), bad.stop()
			if tc.guarantee == "at-least-once" {
				v := c.wait(t, sent)
				v.report(t, sent)
				assert.Positive(t, v.duplicates, "at-least-once repeats outputs after a SIGKILL: the check sees duplicates")
				return
			}
			eosVerdict(t, c, sent, want(60, 1000))
			letters := j.deadLetters(badSent)
			assert.Len(t, letters, badSent, "every bad input has a dead letter")
			for v, n := range letters {
				assert.Equal(t, 1, n, "dead letter %q appears once", v)
			}
			t.Logf("%d kills: %d inputs, %d bad inputs, %d distinct dead letters", tc.kills, sent, badSent, len(letters))
		})
	}
}

// A zombie: a replica SIGSTOPped past its session timeout while the other takes its
// partitions, then SIGCONTed. Its open transaction cannot commit, so nothing it wrote becomes
// visible; it aborts, rejoins, and the outputs stay exact. Two fences can refuse it: its stale
// generation, and, once it has slept past the transaction timeout, the coordinator's abort of
// its transaction (the coordinator looks for expired transactions every 10 s, so past the
// timeout either may come first).
func TestExactlyOnceZombie(t *testing.T) {
	t.Parallel()
	j := eosJob(t)
	j.createTopics(scalePartitions)
	reps := []*proc{j.start(t.TempDir(), exactlyOnce...), j.start(t.TempDir(), exactlyOnce...)}
	waitBalanced(t, scalePartitions, reps...)
	c, l := j.steadyLoad(200)

	zombie := reps[1]
	require.NoError(t, zombie.cmd.Process.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	// Past the 6 s session timeout. The survivor's restore of the zombie's partitions reads
	// committed records only, so it may wait for the broker to abort the zombie's transaction.
	waitBalanced(t, scalePartitions, reps[0])
	c.waitProgress(t, 100)
	time.Sleep(max(0, 8*time.Second-time.Since(stopped)))
	require.NoError(t, zombie.cmd.Process.Signal(syscall.SIGCONT))
	slept := time.Since(stopped)
	t.Logf("zombie stopped for %s", slept.Round(time.Millisecond))
	// The broker, not a client timeout, refuses the zombie's commit.
	fences := "UNKNOWN_MEMBER_ID|ILLEGAL_GENERATION|FENCED_INSTANCE_ID"
	if slept >= 10*time.Second { // the default --transaction-timeout
		fences += "|INVALID_TXN_STATE|PRODUCER_FENCED|INVALID_PRODUCER_EPOCH"
	}
	line := zombie.waitLog(60*time.Second, "exactly-once commit failed")
	assert.Regexp(t, fences, line)
	t.Logf("zombie: %s", line)
	waitBalanced(t, scalePartitions, reps...)
	c.waitProgress(t, 200)

	sent := l.stop()
	eosVerdict(t, c, sent, want(60, 1000))
}

// Scaling 1 -> 3 -> 1 replicas under load: every input once, with the right score.
func TestExactlyOnceScale(t *testing.T) {
	t.Parallel()
	j := eosJob(t)
	j.createTopics(scalePartitions)
	p1 := j.start(t.TempDir(), exactlyOnce...)
	p1.waitRunning(scalePartitions)
	c, l := j.steadyLoad(100)
	p2 := j.start(t.TempDir(), exactlyOnce...)
	p3 := j.start(t.TempDir(), exactlyOnce...)
	waitBalanced(t, scalePartitions, p1, p2, p3)
	c.waitProgress(t, 200)
	require.Equal(t, 0, p3.stop(syscall.SIGTERM))
	require.Equal(t, 0, p2.stop(syscall.SIGTERM))
	waitBalanced(t, scalePartitions, p1)
	c.waitProgress(t, 200)
	sent := l.stop()
	eosVerdict(t, c, sent, want(60, 1000))
}

// Live scores and inputs, three replicas, two of them SIGKILLed and restarted: under
// exactly-once no output at all, first or not, carries a score not valid at its input's time.
// A replica killed between its LevelDB writes and their commit comes back with a store at its
// last commit, not ahead of it, or a redone input would meet a score from its own future.
func TestExactlyOnceLiveJoin(t *testing.T) {
	t.Parallel()
	j := eosJob(t)
	v := j.liveWithKills(exactlyOnce, true)
	assert.Equal(t, joinVerdict{}, v, "no output wrong, lost or repeated")
}

// One broker of three SIGKILLed under load and brought back: every input once, with the
// right score.
func TestExactlyOnceBrokerKilled(t *testing.T) {
	t.Parallel()
	j, dir := clusterJob(t, scalePartitions)
	readCommitted(j)
	p := j.start(t.TempDir(), exactlyOnce...)
	p.waitRunning(scalePartitions)
	c, l := j.steadyLoad(200)
	killBroker(t, c, dir)

	sent := l.stop()
	eosVerdict(t, c, sent, want(60, 1000))
	assert.True(t, p.running())
	t.Logf("processor restarts during the broker kill: %d", strings.Count(p.logs(), "processor failed"))
}

// Two replicas with one --instance-id share a transactional id: each start fences the other.
// One of them stops with a line naming the clash instead of fencing the other for good.
func TestExactlyOnceTransactionalIDClash(t *testing.T) {
	t.Parallel()
	j := eosJob(t)
	j.createTopics(scalePartitions)
	flags := append([]string{"--instance-id", "twin"}, exactlyOnce...)
	a := j.start(t.TempDir(), flags...)
	a.waitRunning(scalePartitions)
	j.scoreRound(60, 1000)
	b := j.start(t.TempDir(), flags...)
	l := j.startLoad(60, 5*time.Millisecond)
	defer l.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var clashed *proc
	for clashed == nil && ctx.Err() == nil {
		for _, p := range []*proc{a, b} {
			if !p.running() {
				clashed = p
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.NotNil(t, clashed, "neither replica stopped on the clash")
	assert.Equal(t, 1, clashed.exited(time.Second))
	assert.Contains(t, clashed.logs(), "another process runs with this replica's transactional id")
}

// Savepoints of a group that runs under exactly-once while scores and inputs stream in are
// exact: the changelog up to the savepoint's table offsets holds exactly the latest score of
// each key among the scores before its committed scores offsets.
func TestExactlyOnceSavepointWhileRunning(t *testing.T) {
	t.Parallel()
	j := eosJob(t)
	j.createTopics(scalePartitions)
	reps := []*proc{j.start(t.TempDir(), exactlyOnce...), j.start(t.TempDir(), exactlyOnce...)}
	waitBalanced(t, scalePartitions, reps...)
	scores := j.startScores(100, 3*time.Millisecond)
	l := j.startLoad(100, 5*time.Millisecond)
	defer l.stop()
	defer scores.stop()
	c := j.collect()
	c.waitProgress(t, 300)
	for i := 0; i < 3; i++ {
		path := filepath.Join(t.TempDir(), "sp.json")
		j.savepoint(path)
		f, err := os.Open(path)
		require.NoError(t, err)
		sp, err := savepoint.Parse(f)
		require.NoError(t, f.Close())
		require.NoError(t, err)
		assert.True(t, sp.Transactional, "the savepoint sees the group commits in transactions")
		assert.True(t, sp.Exact)

		want := map[string]int64{}
		for p, until := range sp.Scores.Offsets {
			if until <= 0 {
				continue
			}
			for _, r := range j.partitionRecords(j.topics.Scores, int32(p), until) {
				var s codecs.Score
				require.NoError(t, json.Unmarshal(r.Value, &s))
				want[s.Key] = s.Score
			}
		}
		table, err := changelog.Read(context.Background(), j.kc, j.adm, j.topics.Table(), sp.Until(), nil)
		require.NoError(t, err)
		got := map[string]int64{}
		for _, part := range table {
			for k, v := range part {
				var s codecs.Score
				require.NoError(t, json.Unmarshal(v, &s))
				got[k] = s.Score
			}
		}
		require.NotEmpty(t, want)
		assert.Equal(t, want, got, "savepoint %d: the table at the cut is the scores before the cut", i)
		c.waitProgress(t, 100)
	}
}

// A cluster that cannot start a transaction (its transaction state topic needs three replicas
// of one broker) fails the start of an exactly-once replica with exit 1 and one line that says
// what transactions need, instead of a replica that runs and never commits.
func TestExactlyOnceWithoutTransactions(t *testing.T) {
	t.Parallel()
	addr, dir := ownBroker(t)
	kafkaScript(t, "stop", dir)
	props := filepath.Join(dir, "server.properties")
	conf, err := os.ReadFile(props)
	require.NoError(t, err)
	require.Contains(t, string(conf), "transaction.state.log.replication.factor=1")
	conf = []byte(strings.Replace(string(conf), "transaction.state.log.replication.factor=1", "transaction.state.log.replication.factor=3", 1))
	require.NoError(t, os.WriteFile(props, conf, 0o644))
	kafkaScript(t, "restart", dir)

	j := newJobOn(t, addr)
	j.createTopics(2)
	p := j.start(t.TempDir(), exactlyOnce...)
	require.Equal(t, 1, p.exited(2*time.Minute))
	lines := strings.Split(strings.TrimSpace(p.logs()), "\n")
	last := lines[len(lines)-1]
	t.Logf("last line: %s", last)
	assert.Contains(t, last, "cannot start a transaction")
	assert.Contains(t, last, "transaction.state.log.replication.factor")
}
