package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/dlq"
	"github.com/enricher/enricher/internal/partition"
)

// Scenario 1: scores then inputs -> outputs with the scores; an unknown key -> -1.
func TestSeedScenario(t *testing.T) {
	t.Parallel()
	j, p, _ := runningJob(t)

	j.produce("score", scoreLine("alice", 10), scoreLine("bob", 20), scoreLine("alice", 11))
	j.waitChangelog(3)
	j.produce("input", inputLine("alice", "hello"), inputLine("bob", "hi"), inputLine("carol", "who?"))

	out := j.outputs(3)
	assert.Equal(t, []codecs.Output{{Key: "alice", Message: "hello", Score: 11}}, out["alice"])
	assert.Equal(t, []codecs.Output{{Key: "bob", Message: "hi", Score: 20}}, out["bob"])
	assert.Equal(t, []codecs.Output{{Key: "carol", Message: "who?", Score: -1}}, out["carol"])
	assert.Equal(t, 0, p.stop(syscall.SIGTERM), "a SIGTERM stop is clean")
	p.waitLog(time.Second, "msg=stopped")
}

// Scenarios 2, 3 and 4: scores, stop (SIGTERM, SIGKILL, or SIGTERM and wipe the state
// directory), start again, send inputs: the scores are still applied.
func TestScoresSurviveRestart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sig       syscall.Signal
		wipeState bool
		warm      string
	}{
		{"sigterm", syscall.SIGTERM, false, "warm=true"},
		{"sigkill", syscall.SIGKILL, false, "warm=true"},
		{"state-dir-deleted", syscall.SIGTERM, true, "warm=false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := newJob(t)
			j.createTopics(partitions)
			state := t.TempDir()
			p := j.start(state)
			p.waitRunning(partitions)
			var lines []string
			for i := 0; i < 40; i++ {
				lines = append(lines, scoreLine(fmt.Sprintf("k%d", i), i*7))
			}
			j.produce("score", lines...)
			j.waitChangelog(40)
			// goka records a store's changelog offset once the broker acknowledged the write,
			// a moment after the record is there to read: a SIGKILL in between leaves a store
			// without an offset, restored cold (CI saw it). A score's offset is committed only
			// after that, so once all 40 are committed the stores hold their offsets.
			require.Eventually(t, func() bool { return j.committed(j.topics.Scores) == 40 }, time.Minute, 100*time.Millisecond,
				"the 40 scores' offsets committed")

			code := p.stop(tc.sig)
			if tc.sig == syscall.SIGTERM {
				require.Equal(t, 0, code)
			}
			if tc.wipeState {
				require.NoError(t, os.RemoveAll(state))
			}

			p2 := j.start(state)
			p2.waitRunning(partitions)
			line := p2.waitLog(time.Second, "partition restored", tc.warm)
			if tc.wipeState {
				assert.NotContains(t, line, "records=0 ", "a wiped store is restored from the changelog: %s", line)
			}
			var inputs []string
			for i := 0; i < 40; i++ {
				inputs = append(inputs, inputLine(fmt.Sprintf("k%d", i), "m"))
			}
			j.produce("input", inputs...)
			out := j.outputs(40)
			for i := 0; i < 40; i++ {
				key := fmt.Sprintf("k%d", i)
				require.Len(t, out[key], 1, key)
				assert.Equal(t, int64(i*7), out[key][0].Score, key)
			}
			assert.Equal(t, 0, p2.stop(syscall.SIGTERM))
		})
	}
}

// Scenario 5: a score tombstone makes later inputs of that key get -1, also after a restart.
func TestTombstoneDeletesScore(t *testing.T) {
	t.Parallel()
	j, p, state := runningJob(t)

	j.produce("score", scoreLine("gone", 5), scoreLine("kept", 6), `{"key":"gone","score":null}`)
	j.waitChangelog(3)
	j.produce("input", inputLine("gone", "a"), inputLine("kept", "b"))
	out := j.outputs(2)
	assert.Equal(t, int64(-1), out["gone"][0].Score)
	assert.Equal(t, int64(6), out["kept"][0].Score)

	require.Equal(t, 0, p.stop(syscall.SIGTERM))
	require.NoError(t, os.RemoveAll(state)) // the tombstone must come back from the changelog too
	p2 := j.start(state)
	p2.waitRunning(partitions)
	j.produce("input", inputLine("gone", "c"), inputLine("kept", "d"))
	out = j.outputs(4)
	assert.Equal(t, []int64{-1, -1}, []int64{out["gone"][0].Score, out["gone"][1].Score})
	assert.Equal(t, []int64{6, 6}, []int64{out["kept"][0].Score, out["kept"][1].Score})
}

// Scenario 6: a co-partitioning mismatch exits non-zero with one clear line.
func TestCopartitioningMismatchRefusesToStart(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopic(j.topics.Input, 2)
	j.createTopic(j.topics.Scores, 3)
	j.createTopic(j.topics.Output, 2)

	code, _, stderr := j.enricher("", append([]string{"run", "--state-dir", t.TempDir(), "--web-addr", ""}, j.topicArgs()...)...)
	assert.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	assert.Contains(t, last, "not co-partitioned")
	assert.Contains(t, last, fmt.Sprintf("%q has 2 partitions", j.topics.Input))
	assert.Contains(t, last, fmt.Sprintf("%q has 3", j.topics.Scores))
	assert.NotContains(t, stderr, "partitions assigned", "the processor never started")
}

// On one broker every topic has one replica: a start warns for the table, output and DLQ, and
// with --require-durable-topics exits 1 naming them, having processed nothing.
func TestTopicsThatCannotKeepAWrite(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopics(partitions)
	code, _, stderr := j.enricher("", append([]string{"run", "--state-dir", t.TempDir(), "--web-addr", "", "--require-durable-topics"}, j.topicArgs()...)...)
	assert.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	assert.Contains(t, last, "cannot keep an acknowledged write")
	for _, topic := range []string{j.topics.Table(), j.topics.Output, j.topics.DLQ()} {
		assert.Contains(t, last, fmt.Sprintf("topic %q has replication factor 1", topic))
	}
	assert.NotContains(t, stderr, "partitions assigned", "the processor never started")

	p := j.start(t.TempDir())
	p.waitRunning(partitions)
	assert.Equal(t, 3, strings.Count(p.logs(), "cannot keep an acknowledged write"), "without the flag: one warning per topic")
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
}

// Scenario 7: the broker reports cleanup.policy=compact for the table topic.
func TestTableTopicIsCompacted(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopics(partitions)
	rcs, err := j.adm.DescribeTopicConfigs(context.Background(), j.topics.Table())
	require.NoError(t, err)
	policy := ""
	for _, c := range rcs[0].Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	assert.Equal(t, "compact", policy)
	assert.Equal(t, int32(partitions), j.partitions(j.topics.Table()))
}

// Scenario 8: malformed JSON and a key mismatch land in the DLQ with a reason, and the next good
// record is still enriched.
func TestBadRecordsGoToDLQ(t *testing.T) {
	t.Parallel()
	j, p, _ := runningJob(t)

	j.produce("score", scoreLine("k", 42))
	j.waitChangelog(1)
	j.produceRaw(j.topics.Input,
		&kgo.Record{Key: []byte("k"), Value: []byte(`{"message": broken`)},
		&kgo.Record{Key: []byte("k"), Value: []byte(`{"key":"other","message":"m"}`)},
		&kgo.Record{Key: []byte("k"), Value: []byte(`{"key":"k","message":"good"}`)},
	)
	j.produceRaw(j.topics.Scores, &kgo.Record{Key: []byte("k"), Value: []byte(`{"score":"7"}`)})

	out := j.outputs(1)
	assert.Equal(t, []codecs.Output{{Key: "k", Message: "good", Score: 42}}, out["k"])

	letters := j.records(j.topics.DLQ(), 3, 30*time.Second)
	require.Len(t, letters, 3)
	reasons := map[string]string{}
	for _, r := range letters {
		h := headers(r)
		reasons[string(r.Value)] = h[dlq.HeaderDLQReason]
		assert.NotEmpty(t, h[dlq.HeaderDLQError])
		assert.NotEmpty(t, h[dlq.HeaderSourceOffset])
		assert.Equal(t, "k", string(r.Key))
	}
	assert.Equal(t, map[string]string{
		`{"message": broken`:            "invalid_json",
		`{"key":"other","message":"m"}`: "key_mismatch",
		`{"score":"7"}`:                 "wrong_type",
	}, reasons)
	p.waitLog(time.Second, "dead-letter", "reason=key_mismatch")
	require.Equal(t, 0, p.stop(syscall.SIGTERM), "bad records never stop the processor")
}

// Scenario 9: records produced by kcat (librdkafka, murmur2 partitioner) are enriched, and the
// output partition of each key matches murmur2.
func TestForeignProducerKcat(t *testing.T) {
	t.Parallel()
	kcat := needTool(t, "kcat")
	j, _, _ := runningJob(t)

	keys := []string{"user-1", "user-2", "user-3", "user-42", "ключ", "a-little-bit-long-string"}
	var scores, inputs strings.Builder
	for i, k := range keys {
		fmt.Fprintf(&scores, "%s\t%s\n", k, scoreLine("", 100+i))
		fmt.Fprintf(&inputs, "%s\t%s\n", k, inputLine(k, "from kcat"))
	}
	kcatProduce := func(topic, data string) {
		cmd := exec.Command(kcat, "-P", "-b", brokers, "-t", topic, "-K", "\t", "-X", "topic.partitioner=murmur2_random")
		cmd.Stdin = strings.NewReader(data)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
	}
	kcatProduce(j.topics.Scores, scores.String())
	j.waitChangelog(int64(len(keys)))
	kcatProduce(j.topics.Input, inputs.String())

	recs := j.records(j.topics.Output, len(keys), 60*time.Second)
	require.Len(t, recs, len(keys))
	for _, r := range recs {
		var o codecs.Output
		require.NoError(t, json.Unmarshal(r.Value, &o))
		i := indexOf(keys, o.Key)
		require.GreaterOrEqual(t, i, 0, o.Key)
		assert.Equal(t, int64(100+i), o.Score, o.Key)
		assert.Equal(t, partition.Murmur2.Partition([]byte(o.Key), partitions), r.Partition, "output partition of %q", o.Key)
		src, _ := strconv.Atoi(headers(r)[dlq.HeaderSourcePartition])
		assert.Equal(t, int32(src), r.Partition, "kcat's murmur2 put the input where Java would")
	}
}

// The CLI's usage errors exit 2 with one line naming what is wrong.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	j := &job{t: t}
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"run", "--partitioner", "random"}, "", "--partitioner"},
		{[]string{"run", "--brokers", "nohostport"}, "", "--brokers"},
		{[]string{"run", "--no-such-flag"}, "", "no-such-flag"},
		{[]string{"run", "--partitions", "0"}, "", "--partitions"},
		{[]string{"run"}, "ENRICHER_LOG_FORMAT=xml", "--log-format"},
		{[]string{"run"}, "ENRICHER_STANDBY=maybe", "ENRICHER_STANDBY"},
		{[]string{"produce", "nothing"}, "", "produce input"},
		{[]string{"consume", "nothing"}, "", "consume output|dlq|input|scores|table"},
		{[]string{"frobnicate"}, "", "unknown command"},
		{[]string{"run", "stray"}, "", `unexpected argument "stray"`},
		{[]string{"topics", "describe", "stray"}, "", `unexpected argument "stray"`},
		{[]string{"produce", "score", "stray"}, "", `unexpected argument "stray"`},
		{[]string{"consume", "output", "stray"}, "", `unexpected argument "stray"`},
		{[]string{"table", "get", "k", "stray"}, "", `unexpected argument "stray"`},
		{[]string{"replay", "--rebuild", "dir", "stray"}, "", `unexpected argument "stray"`},
		{[]string{"version", "stray"}, "", `unexpected argument "stray"`},
		{[]string{"run", "--advertise-addr", "no-port"}, "", "advertise-addr"},
		{[]string{"run", "--state-min-free", "lots"}, "", "--state-min-free"},
		{[]string{"run", "--format", "xml"}, "", "--format"},
		{[]string{"run", "--input-format", "xml"}, "", "--input-format"},
		{[]string{"run", "--format", "avro", "--schema-registry", "http://127.0.0.1:1", "--output-format", "json"}, "", "--output-format"},
		{[]string{"run", "--scores-format", "avro", "--schema-registry", "http://127.0.0.1:1"}, "", "--scores-format"},
		{[]string{"run", "--input-format", "protobuf", "--scores-format", "json"}, "", "--schema-registry"},
		{[]string{"run", "--format", "protobuf"}, "", "--schema-registry"},
		{[]string{"run", "--format", "avro"}, "", "--schema-registry"},
		{[]string{"run", "--format", "json-schema"}, "", "--schema-registry"},
		{[]string{"run", "--format", "json-schema", "--schema-registry", "http://127.0.0.1:1", "--key-field", "id"}, "", "--key-field"},
		{[]string{"run", "--format", "avro", "--schema-registry", "http://127.0.0.1:1", "--output-shape", "merge"}, "", "--output-shape"},
		{[]string{"run", "--guarantee", "exactly-once", "--shutdown-timeout", "30s"}, "", "--shutdown-timeout"},
		{[]string{"run", "--guarantee", "exactly-once", "--rebalance-timeout", "2m"}, "", "--shutdown-timeout"},
	} {
		cmd := exec.Command(binary, tc.args...)
		if tc.env != "" {
			cmd.Env = append(os.Environ(), tc.env)
		}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%v", tc.args)
		assert.Equal(t, 2, ee.ExitCode(), "%v: %s", tc.args, out)
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		assert.Len(t, lines, 1, "%v: one line: %s", tc.args, out)
		assert.Contains(t, string(out), tc.want, "%v", tc.args)
	}
	code, _, stderr := j.enricher("", "run", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stderr, "ENRICHER_STATE_DIR")
}

// withRecreatedTable runs a replica until 20 scores are in its changelog, stops it, then deletes
// the table topic and creates it again, empty; it returns the job and the replica's state dir.
func withRecreatedTable(t *testing.T) (*job, string) {
	t.Helper()
	j, p, state := runningJob(t)
	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, scoreLine(fmt.Sprintf("k%d", i), i))
	}
	j.produce("score", lines...)
	j.waitChangelog(20)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	ctx := context.Background()
	_, err := j.adm.DeleteTopics(ctx, j.topics.Table())
	require.NoError(t, err)
	compact := "compact"
	require.Eventually(t, func() bool {
		_, err := j.adm.CreateTopic(ctx, partitions, 1, map[string]*string{"cleanup.policy": &compact}, j.topics.Table())
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "recreate the table topic")
	return j, state
}

// A changelog deleted and recreated while the local store still holds the table: starting would
// silently reset the scores, so enricher says why and stops, leaving the store as it is.
func TestDeletedChangelogStopsInsteadOfResetting(t *testing.T) {
	t.Parallel()
	j, state := withRecreatedTable(t)

	p2 := j.start(state)
	assert.Equal(t, 1, p2.exited(90*time.Second))
	logs := p2.logs()
	assert.Contains(t, logs, "table state cannot be recovered from its changelog")
	assert.Contains(t, logs, "was deleted or recreated")
	matches, err := filepath.Glob(filepath.Join(state, j.topics.Table()+".*"))
	require.NoError(t, err)
	assert.Len(t, matches, partitions, "no store was moved aside or dropped: %v", matches)
}

// A changelog topic deleted and recreated with records of its own is told apart from the one a
// store was built from by its topic ID, whatever its offsets: the replica stops and says why, or
// with --changelog-recreated rebuild moves its stores aside and restores the new topic.
func TestRecreatedChangelogIsDetectedByTopicID(t *testing.T) {
	t.Parallel()
	j, state := withRecreatedTable(t)
	// More records than the old topic had in every partition: offsets alone cannot tell.
	var recs []*kgo.Record
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("k%d", i)
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(fmt.Sprintf(`{"key":%q,"score":%d}`, k, 1000+i))})
	}
	j.produceRaw(j.topics.Table(), recs...)

	p2 := j.start(state)
	require.Equal(t, 1, p2.exited(90*time.Second), p2.logs())
	assert.Contains(t, p2.logs(), "changelog topic was recreated")
	assert.Contains(t, p2.logs(), "--changelog-recreated rebuild")

	p3 := j.start(state, "--changelog-recreated", "rebuild")
	p3.waitRunning(partitions)
	assert.Equal(t, int64(1005), j.enrichOn(j.topics.Output, 6, "rebuilt")["k5"], "the new topic's score")
	matches, err := filepath.Glob(filepath.Join(state, j.topics.Table()+".*.stale-*"))
	require.NoError(t, err)
	assert.Len(t, matches, partitions, "every store was moved aside")
	require.Equal(t, 0, p3.stop(syscall.SIGTERM))
}

// --output-shape merge: inputs and scores are JSON objects of the producer's own shape; an
// output is its input object, every field and nested value kept, with the score field added.
// The join key is the record key; a score that is not an integer goes to the DLQ.
func TestOutputShapeMerge(t *testing.T) {
	t.Parallel()
	j, p, _ := runningJob(t, "--output-shape", "merge", "--key-field", "customer", "--score-field", "tier")
	rec := func(key, value string) *kgo.Record { return &kgo.Record{Key: []byte(key), Value: []byte(value)} }
	j.produceRaw(j.topics.Scores, rec("c1", `{"customer":"c1","tier":3,"model":{"v":2}}`), rec("c2", `{"tier":1.5}`))
	j.waitChangelog(1)
	j.produceRaw(j.topics.Input,
		rec("c1", `{"order":{"id":7,"amount":12.50,"items":["a","b"]},"customer":"c1"}`),
		rec("c9", `{"order":{"id":8}}`))
	got := map[string]string{}
	for _, r := range j.records(j.topics.Output, 2, 60*time.Second) {
		got[string(r.Key)] = string(r.Value)
	}
	assert.Equal(t, map[string]string{
		"c1": `{"order":{"id":7,"amount":12.50,"items":["a","b"]},"customer":"c1","tier":3}`,
		"c9": `{"order":{"id":8},"tier":-1}`,
	}, got)
	letters := j.records(j.topics.DLQ(), 1, 30*time.Second)
	require.Len(t, letters, 1)
	assert.Equal(t, string(codecs.ReasonWrongType), headers(letters[0])[dlq.HeaderDLQReason])
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	code, _, stderr := j.enricher("", append([]string{"run", "--state-dir", t.TempDir(), "--score-field", "tier"}, j.topicArgs()...)...)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "need --output-shape merge")
}
