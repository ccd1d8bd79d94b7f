package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/dlq"
	"github.com/enricher/enricher/internal/store"
)

// The single broker stops for 30 s: `enricher run` does not exit while it is away, and the
// inputs sent before and after are all enriched with their scores.
func TestBrokerOutage(t *testing.T) {
	t.Parallel()
	addr, dir := ownBroker(t)
	j := newJobOn(t, addr)
	j.createTopics(partitions)
	p := j.start(t.TempDir())
	p.waitRunning(partitions)
	j.scoreRound(40, 500)
	j.waitChangelog(40)
	assert.Equal(t, want(40, 500), j.enrichOn(j.topics.Output, 40, "before"))

	kafkaScript(t, "stop", dir)
	outage := time.Now()
	for time.Since(outage) < 30*time.Second {
		require.True(t, p.running(), "enricher exited while the broker was away:\n%s", p.logs())
		time.Sleep(500 * time.Millisecond)
	}
	kafkaScript(t, "restart", dir)

	assert.Equal(t, want(40, 500), j.enrichOn(j.topics.Output, 40, "after"), "scores survive the outage")
	require.True(t, p.running())
	t.Logf("what enricher logged during the outage:\n%s", grepLines(p.logs(), "level=WARN", "level=ERROR"))
	assert.Equal(t, 0, p.stop(syscall.SIGTERM))
}

// A batch of bad records among good ones: each bad one lands in the DLQ with its reason, every
// good one is enriched, and the processor never stops.
func TestHostileInputBatch(t *testing.T) {
	t.Parallel()
	j, p, _ := runningJob(t)
	j.scoreRound(10, 70)
	j.waitChangelog(10)

	big := `{"key":"k1","message":"` + strings.Repeat("x", 990_000) + `"}`
	bad := []struct {
		topic      string
		key, value []byte
		reason     string
	}{
		{j.topics.Input, []byte("k1"), []byte(`{"message": nope}`), "invalid_json"},
		{j.topics.Scores, []byte("k1"), []byte(`{"score":"7"}`), "wrong_type"},
		{j.topics.Scores, []byte("k1"), []byte(`{"score":92233720368547758070}`), "wrong_type"},
		{j.topics.Input, []byte("k1"), []byte{}, "empty_value"},
		{j.topics.Input, nil, []byte(`{"key":"k1","message":"no record key"}`), "missing_key"},
		{j.topics.Input, []byte("k1"), []byte(`{"key":"k2","message":"m"}`), "key_mismatch"},
		{j.topics.Input, []byte("k1"), []byte(big), "too_large"},
		{j.topics.Input, []byte("k1"), []byte("{\"message\":\"\xc3\x28\"}"), "invalid_utf8"},
	}
	cl, err := j.kc.Client(kgo.ProducerBatchMaxBytes(4 << 20))
	require.NoError(t, err)
	defer cl.Close()
	for i, b := range bad {
		r := &kgo.Record{Topic: b.topic, Key: b.key, Value: b.value}
		j.kc.PartitionRecord(r, partitions)
		require.NoError(t, cl.ProduceSync(context.Background(), r).FirstErr(), "bad record %d", i)
		j.produce("input", inputLine(fmt.Sprintf("k%d", i), fmt.Sprintf("good-%d", i)))
	}

	got := map[string]int64{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, r := range j.records(j.topics.Output, 1<<20, 2*time.Second) {
			var o codecs.Output
			if !assert.NoError(c, json.Unmarshal(r.Value, &o)) {
				return
			}
			got[o.Message] = o.Score
		}
		assert.GreaterOrEqual(c, len(got), len(bad))
	}, 60*time.Second, 500*time.Millisecond)
	for i := range bad {
		assert.Equal(t, int64(70+i), got[fmt.Sprintf("good-%d", i)], "good record %d", i)
	}
	assert.Len(t, got, len(bad), "bad inputs produce no output")

	letters := j.records(j.topics.DLQ(), len(bad), 60*time.Second)
	require.Len(t, letters, len(bad))
	reasons := map[string]int{}
	for _, r := range letters {
		h := headers(r)
		reasons[h[dlq.HeaderDLQReason]]++
		assert.NotEmpty(t, h[dlq.HeaderDLQError])
		if h[dlq.HeaderDLQReason] == "too_large" {
			assert.Equal(t, fmt.Sprint(len(big)), h[dlq.HeaderDLQTruncated])
			assert.Less(t, len(r.Value), len(big))
		}
	}
	assert.Equal(t, map[string]int{"invalid_json": 1, "wrong_type": 2, "empty_value": 1, "missing_key": 1,
		"key_mismatch": 1, "too_large": 1, "invalid_utf8": 1}, reasons)
	require.True(t, p.running())
	assert.Equal(t, 0, p.stop(syscall.SIGTERM))
}

// `dlq list` shows dead letters with their reasons; `dlq redrive` publishes the chosen ones to
// their source again, and once the cause is fixed they are enriched.
func TestDLQListAndRedrive(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopics(partitions)
	state := t.TempDir()
	p := j.start(state, "--max-message-bytes", "200")
	p.waitRunning(partitions)
	j.produce("score", scoreLine("k1", 5))
	j.waitChangelog(1)
	long := strings.Repeat("y", 300)
	j.produce("input", inputLine("k1", long))
	j.produceRaw(j.topics.Input, &kgo.Record{Key: []byte("k1"), Value: []byte(`{"key":"k9","message":"m"}`)})
	j.records(j.topics.DLQ(), 2, 30*time.Second)

	code, stdout, stderr := j.enricher("", append([]string{"dlq", "list", "--json"}, j.topicArgs()...)...)
	require.Equal(t, 0, code, stderr)
	reasons := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		reasons[m["reason"].(string)] = m["source_topic"].(string)
	}
	assert.Equal(t, map[string]string{"too_large": j.topics.Input, "key_mismatch": j.topics.Input}, reasons)
	code, stdout, _ = j.enricher("", append([]string{"dlq", "list", "--reason", "too_large"}, j.topicArgs()...)...)
	require.Equal(t, 0, code)
	assert.Contains(t, stdout, "too_large")
	assert.NotContains(t, stdout, "key_mismatch")

	code, _, stderr = j.enricher("", append([]string{"dlq", "redrive"}, j.topicArgs()...)...)
	assert.Equal(t, 2, code, "redrive without a choice is a usage error")
	assert.Contains(t, stderr, "--reason, --at or --all")

	// Fix the cause (the limit), then redrive.
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
	p = j.start(state)
	p.waitRunning(partitions)
	code, _, stderr = j.enricher("", append([]string{"dlq", "redrive", "--reason", "too_large"}, j.topicArgs()...)...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "redrove 1 dead letters")
	out := j.records(j.topics.Output, 1, 30*time.Second)
	require.Len(t, out, 1)
	var o codecs.Output
	require.NoError(t, json.Unmarshal(out[0].Value, &o))
	assert.Equal(t, codecs.Output{Key: "k1", Message: long, Score: 5}, o)
	assert.Equal(t, int64(2), j.endOffsets(j.topics.DLQ()), "nothing new was dead-lettered")
}

// A replica killed every few seconds, ten times, while scores stream in never corrupts its
// local store: afterwards its table equals the changelog's. Under exactly-once a kill falls
// between LevelDB writes and their commit; the changelog is read as committed.
func TestCrashLoopKeepsStoreConsistent(t *testing.T) {
	t.Parallel()
	for _, guarantee := range []string{"at-least-once", "exactly-once"} {
		t.Run(guarantee, func(t *testing.T) {
			t.Parallel()
			crashLoop(t, "--guarantee", guarantee)
		})
	}
}

func crashLoop(t *testing.T, flags ...string) {
	j := newJob(t)
	j.createTopics(partitions)
	state := t.TempDir()
	// A static member id lets each restart take the partitions back at once.
	flags = append([]string{"--instance-id", "crashloop-replica"}, flags...)
	scores := j.startScores(200, 5*time.Millisecond)
	for i := 0; i < 10; i++ {
		p := j.start(state, flags...)
		p.waitRunning(partitions)
		time.Sleep(time.Duration(1000+300*i%1500) * time.Millisecond) // let it apply scores, then crash mid-stream
		p.stop(syscall.SIGKILL)
	}
	sent := scores.stop()

	p := j.start(state, flags...)
	p.waitRunning(partitions)
	// Caught up: the group has committed every score, so every table write is in the changelog.
	require.Eventually(t, func() bool {
		lag, err := j.adm.Lag(context.Background(), j.topics.Group)
		if err != nil {
			return false
		}
		total := int64(0)
		ok := true
		lag.Each(func(l kadm.DescribedGroupLag) {
			for _, pl := range l.Lag[j.topics.Scores] {
				ok = ok && pl.Commit.At >= 0
				total += pl.Lag
			}
		})
		return ok && total == 0
	}, 120*time.Second, 250*time.Millisecond, "the replica never caught up with %d scores", sent)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	local := localTable(t, state, j.topics.Table(), partitions)
	require.Len(t, local, 200)
	assert.Equal(t, j.changelogTable(), local, "the local store equals the changelog after ten crashes")
	t.Logf("%d scores written across 10 SIGKILLs; restores logged: %d", sent, strings.Count(p.logs(), "partition restored"))
}

// A local store with garbage in its files is detected at start, moved aside and rebuilt from
// the changelog, with a log line saying so; the scores are still applied.
func TestCorruptLocalStoreIsRebuilt(t *testing.T) {
	t.Parallel()
	j, p, state := runningJob(t)
	j.scoreRound(40, 300)
	j.waitChangelog(40)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	corrupted := 0
	for part := 0; part < partitions; part++ {
		files, err := filepath.Glob(filepath.Join(store.Path(state, j.topics.Table(), int32(part)), "MANIFEST-*"))
		require.NoError(t, err)
		for _, f := range files {
			require.NoError(t, os.WriteFile(f, []byte("this is not a leveldb manifest"), 0o644))
			corrupted++
		}
	}
	require.Equal(t, partitions, corrupted)

	p = j.start(state)
	p.waitRunning(partitions)
	assert.Equal(t, partitions, strings.Count(p.logs(), "local store is corrupt: moved aside"), p.logs())
	assert.Equal(t, want(40, 300), j.enrichOn(j.topics.Output, 40, "after-corruption"))
	moved, err := filepath.Glob(filepath.Join(state, "*.corrupt-*"))
	require.NoError(t, err)
	assert.Len(t, moved, partitions, "the corrupt stores are kept aside for inspection")
}

// kill -9 one broker of three under a steady input stream, then bring it back: no input goes
// without an output, no score is lost, duplicates are reported.
func TestBrokerKilledInCluster(t *testing.T) {
	t.Parallel()
	j, dir := clusterJob(t, partitions)
	p := j.start(t.TempDir())
	p.waitRunning(partitions)
	j.scoreRound(60, 2000)
	j.waitChangelog(60)
	c := j.collect()
	l := j.startLoad(60, 10*time.Millisecond)
	c.waitProgress(t, 200)
	killBroker(t, c, dir)

	sent := l.stop()
	v := c.wait(t, sent)
	v.report(t, sent)
	assert.Zero(t, v.noScore, "no output misses its key's score")
	assert.True(t, p.running())
	table := map[string]int64{}
	for k, raw := range j.changelogTable() {
		var s codecs.Score
		require.NoError(t, json.Unmarshal([]byte(raw), &s))
		table[k] = s.Score
	}
	assert.Equal(t, want(60, 2000), table, "no score lost from the changelog")
	t.Logf("processor restarts during the broker kill: %d", strings.Count(p.logs(), "processor failed"))
}
