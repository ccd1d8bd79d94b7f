package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/dlq"
	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/internal/store"
	"github.com/enricher/enricher/topology"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const partitions = 4

// outputs reads n outputs and returns them by key, checking each carries its source headers.
func (j *job) outputs(n int) map[string][]codecs.Output {
	j.t.Helper()
	recs := j.records(j.topics.Output, n, 60*time.Second)
	require.Len(j.t, recs, n, "outputs")
	byKey := map[string][]codecs.Output{}
	for _, r := range recs {
		var o codecs.Output
		require.NoError(j.t, json.Unmarshal(r.Value, &o), "output %s", r.Value)
		require.Equal(j.t, string(r.Key), o.Key)
		h := headers(r)
		require.Equal(j.t, j.topics.Input, h[dlq.HeaderSourceTopic])
		require.NotEmpty(j.t, h[dlq.HeaderSourceOffset])
		byKey[o.Key] = append(byKey[o.Key], o)
	}
	return byKey
}

func headers(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

func scoreLine(key string, score int) string {
	return fmt.Sprintf(`{"key":%q,"score":%d}`, key, score)
}

func inputLine(key, msg string) string {
	return fmt.Sprintf(`{"key":%q,"message":%q}`, key, msg)
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// topicSafe matches what may not stand in a topic name.
var topicSafe = regexp.MustCompile(`[^a-z0-9._-]+`)

// job is one test's topics and group on the shared broker.
type job struct {
	t       *testing.T
	brokers string
	// flags and env are added to every enricher command of the job (security settings).
	flags []string
	env   []string
	// readOpts are added to the test's readers of the job's topics (read_committed).
	readOpts []kgo.Opt
	topics   topology.Topics
	kc       kafkaconf.Config
	adm      *kadm.Client
	cl       *kgo.Client
}

func newJob(t *testing.T) *job {
	t.Helper()
	needKafka(t)
	return newJobOn(t, brokers)
}

// newJobOn is newJob on another broker (a test's own), optionally with TLS and SASL settings
// for the test's own clients.
func newJobOn(t *testing.T, brokers string, sec ...kafkaconf.Security) *job {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := topicSafe.ReplaceAllString(strings.ToLower(t.Name()), "-") + "-" + hex.EncodeToString(b)
	kc := kafkaconf.Defaults()
	kc.Brokers = strings.Split(brokers, ",")
	if len(sec) > 0 {
		kc.Security = sec[0]
	}
	cl, err := kc.Client()
	require.NoError(t, err)
	j := &job{t: t, brokers: brokers, kc: kc, cl: cl, adm: kadm.NewClient(cl), topics: topology.Topics{
		Group: "g-" + id, Input: "in-" + id, Scores: "sc-" + id, Output: "out-" + id,
	}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = j.adm.DeleteTopics(ctx, j.topics.Input, j.topics.Scores, j.topics.Output, j.topics.Table(), j.topics.DLQ())
		cl.Close()
	})
	return j
}

// topicArgs are the flags that point a command at this job.
func (j *job) topicArgs() []string {
	return append([]string{"--brokers", j.brokers, "--group", j.topics.Group, "--input", j.topics.Input,
		"--scores", j.topics.Scores, "--output", j.topics.Output}, j.flags...)
}

// enricher runs the binary to completion and returns its exit code, stdout and stderr.
func (j *job) enricher(stdin string, args ...string) (int, string, string) {
	j.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), j.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(j.t, err)
	}
	return code, stdout.String(), stderr.String()
}

func (j *job) createTopics(partitions int) {
	j.t.Helper()
	code, _, stderr := j.enricher("", append([]string{"topics", "create", "--partitions", fmt.Sprint(partitions)}, j.topicArgs()...)...)
	require.Equal(j.t, 0, code, stderr)
}

// appendTimeOutput makes the broker stamp the output topic's records with the time it appends
// them: outputs carry their input's timestamp, and a test that times when outputs were written
// reads that.
func (j *job) appendTimeOutput() {
	j.setTopicConfig(j.topics.Output, "message.timestamp.type", "LogAppendTime")
}

// setTopicConfig sets one config of topic and waits until the broker describes it so: the
// controller confirms an alteration before the broker applies it, and a process started at
// once could read the old value (CI saw a replica read the default max.message.bytes).
func (j *job) setTopicConfig(topic, key, value string) {
	j.t.Helper()
	rs, err := j.adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: key, Value: &value}}, topic)
	require.NoError(j.t, err)
	require.NoError(j.t, rs[0].Err)
	require.EventuallyWithT(j.t, func(c *assert.CollectT) {
		described, err := j.adm.DescribeTopicConfigs(context.Background(), topic)
		if !assert.NoError(c, err) {
			return
		}
		rc, err := described.On(topic, nil)
		if !assert.NoError(c, err) || !assert.NoError(c, rc.Err) {
			return
		}
		for _, cfg := range rc.Configs {
			if cfg.Key == key {
				assert.Equal(c, value, cfg.MaybeValue())
				return
			}
		}
		assert.Fail(c, "not described", key)
	}, 30*time.Second, 100*time.Millisecond, "%s=%s on %s", key, value, topic)
}

// createTopic creates topic with partitions and waits until the broker's metadata lists it: a
// created topic reaches the metadata a moment after CreateTopic returns, and a process started
// at once could be told that it does not exist.
func (j *job) createTopic(topic string, partitions int32) {
	j.t.Helper()
	ctx := context.Background()
	_, err := j.adm.CreateTopic(ctx, partitions, 1, nil, topic)
	require.NoError(j.t, err)
	require.EventuallyWithT(j.t, func(c *assert.CollectT) {
		md, err := j.adm.ListTopics(ctx, topic)
		if assert.NoError(c, err) && assert.NoError(c, md.Error()) {
			assert.Len(c, md[topic].Partitions, int(partitions))
		}
	}, 10*time.Second, 100*time.Millisecond, "topic %s never showed in the metadata", topic)
}

// produce sends JSON lines through `enricher produce input|score`.
func (j *job) produce(kind string, lines ...string) {
	j.t.Helper()
	code, _, stderr := j.enricher(strings.Join(lines, "\n")+"\n", append([]string{"produce", kind}, j.topicArgs()...)...)
	require.Equal(j.t, 0, code, stderr)
}

// produceRaw writes records as they are (bad ones included) with murmur2 partitioning.
func (j *job) produceRaw(topic string, records ...*kgo.Record) {
	j.t.Helper()
	partitions := j.partitions(topic)
	for _, r := range records {
		r.Topic = topic
		j.kc.PartitionRecord(r, partitions)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(j.t, j.cl.ProduceSync(ctx, records...).FirstErr())
}

func (j *job) partitions(topic string) int32 {
	j.t.Helper()
	md, err := j.adm.ListTopics(context.Background(), topic)
	require.NoError(j.t, err)
	require.NoError(j.t, md[topic].Err)
	return int32(len(md[topic].Partitions))
}

// endOffsets sums the end offsets of a topic's partitions.
func (j *job) endOffsets(topic string) int64 {
	j.t.Helper()
	ends, err := j.adm.ListEndOffsets(context.Background(), topic)
	require.NoError(j.t, err)
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// waitChangelog waits until the table's changelog holds at least n records: the scores were applied.
func (j *job) waitChangelog(n int64) { j.waitChangelogFor(n, time.Minute) }

// waitChangelogFor is waitChangelog with its own timeout, for tables of millions of keys.
func (j *job) waitChangelogFor(n int64, timeout time.Duration) {
	j.t.Helper()
	require.Eventually(j.t, func() bool { return j.endOffsets(j.topics.Table()) >= n }, timeout, 100*time.Millisecond,
		"changelog %s never reached %d records", j.topics.Table(), n)
}

// records reads a topic from the start until it has n records or the timeout passes.
func (j *job) records(topic string, n int, timeout time.Duration) []*kgo.Record {
	j.t.Helper()
	cl, err := j.kc.Client(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, j.readOpts...)...)
	require.NoError(j.t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		for _, fe := range fs.Errors() {
			j.t.Fatalf("consume %s: %v", topic, fe.Err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// outputsOfInputs reads outputs until they come from n distinct inputs, told apart by their
// source headers (partition and offset), or until timeout. At-least-once may write an input's
// output twice after a failure; it returns one output per input, and how many repeats it read.
func (j *job) outputsOfInputs(n int, timeout time.Duration) (outs []*kgo.Record, repeats int) {
	j.t.Helper()
	cl, err := j.kc.Client(append([]kgo.Opt{kgo.ConsumeTopics(j.topics.Output), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, j.readOpts...)...)
	require.NoError(j.t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seen := map[string]bool{}
	for len(outs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		for _, fe := range fs.Errors() {
			j.t.Fatalf("consume %s: %v", j.topics.Output, fe.Err)
		}
		for _, r := range fs.Records() {
			h := headers(r)
			source := h[dlq.HeaderSourcePartition] + "/" + h[dlq.HeaderSourceOffset]
			require.NotEqual(j.t, "/", source, "an output without its source headers")
			if seen[source] {
				repeats++
				continue
			}
			seen[source] = true
			outs = append(outs, r)
		}
	}
	return outs, repeats
}

// describe returns the job's topics as `enricher topics describe --json` reports them.
func (j *job) describe() []topology.TopicInfo {
	j.t.Helper()
	code, stdout, stderr := j.enricher("", append([]string{"topics", "describe", "--json"}, j.topicArgs()...)...)
	require.Equal(j.t, 0, code, stderr)
	var infos []topology.TopicInfo
	require.NoError(j.t, json.Unmarshal([]byte(stdout), &infos))
	return infos
}

// runningJob is a job with its topics created (4 partitions) and one `enricher run` that has
// restored all of them; it returns the job, the process and its state directory.
func runningJob(t *testing.T, extra ...string) (*job, *proc, string) {
	t.Helper()
	j := newJob(t)
	j.createTopics(partitions)
	state := t.TempDir()
	p := j.start(state, extra...)
	p.waitRunning(partitions)
	return j, p, state
}

// localTable reads a stopped replica's local stores: every key but goka's offset key.
func localTable(t *testing.T, state, table string, partitions int) map[string]string {
	t.Helper()
	out := map[string]string{}
	for p := 0; p < partitions; p++ {
		db, err := leveldb.OpenFile(store.Path(state, table, int32(p)), nil)
		require.NoError(t, err)
		it := db.NewIterator(nil, nil)
		for it.Next() {
			if k := string(it.Key()); k != "__offset" {
				out[k] = string(it.Value())
			}
		}
		it.Release()
		require.NoError(t, it.Error())
		require.NoError(t, db.Close())
	}
	return out
}

// changelogTable reads the table from its changelog.
func (j *job) changelogTable() map[string]string {
	j.t.Helper()
	parts, err := changelog.Read(context.Background(), j.kc, j.adm, j.topics.Table(), nil, nil)
	require.NoError(j.t, err)
	out := map[string]string{}
	for _, tb := range parts {
		for k, v := range tb {
			out[k] = string(v)
		}
	}
	return out
}

// scoreRound writes one score per key k0..k(n-1) with value base+i.
func (j *job) scoreRound(n, base int) {
	j.t.Helper()
	lines := make([]string, n)
	for i := range lines {
		lines[i] = scoreLine(fmt.Sprintf("k%d", i), base+i)
	}
	j.produce("score", lines...)
}

// dump returns the table of group as `enricher replay --dump` prints it.
func (j *job) dump(group string, extra ...string) map[string]int64 {
	j.t.Helper()
	args := append([]string{"replay", "--dump", "--brokers", brokers, "--group", group}, extra...)
	code, stdout, stderr := j.enricher("", args...)
	require.Equal(j.t, 0, code, stderr)
	table := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var s codecs.Score
		require.NoError(j.t, json.Unmarshal([]byte(line), &s), line)
		table[s.Key] = s.Score
	}
	return table
}

func want(n, base int) map[string]int64 {
	m := map[string]int64{}
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("k%d", i)] = int64(base + i)
	}
	return m
}

func (j *job) savepoint(path string) {
	j.t.Helper()
	code, stdout, stderr := j.enricher("", append([]string{"savepoint", "create", "--out", path}, j.topicArgs()...)...)
	require.Equal(j.t, 0, code, stderr)
	require.Contains(j.t, stdout, "savepoint of group")
}

// enrichOn sends one input per key k0..k(n-1), tagged tag, and returns the scores of their
// outputs on output by key.
func (j *job) enrichOn(output string, n int, tag string) map[string]int64 {
	j.t.Helper()
	lines := make([]string, n)
	for i := range lines {
		lines[i] = inputLine(fmt.Sprintf("k%d", i), tag)
	}
	j.produce("input", lines...)
	got := map[string]int64{}
	require.EventuallyWithT(j.t, func(c *assert.CollectT) {
		for _, r := range j.records(output, 1<<20, 2*time.Second) {
			var o codecs.Output
			if !assert.NoError(c, json.Unmarshal(r.Value, &o)) {
				return
			}
			if o.Message == tag {
				got[o.Key] = o.Score
			}
		}
		assert.Len(c, got, n)
	}, 60*time.Second, 500*time.Millisecond, "outputs tagged %q on %s", tag, output)
	return got
}

// exactlyOnce are the flags of a replica under exactly-once.
var exactlyOnce = []string{"--guarantee", "exactly-once"}

// eosJob is a job whose test readers read as read_committed consumers do.
func eosJob(t *testing.T) *job { return readCommitted(newJob(t)) }

// readCommitted makes j's test readers read as read_committed consumers do: what an aborted
// transaction wrote is never seen.
func readCommitted(j *job) *job {
	j.readOpts = []kgo.Opt{kgo.FetchIsolationLevel(kgo.ReadCommitted())}
	return j
}

// deadLetters reads the dead letters, expecting n (a duplicate would come after them: the read
// asks for one more and runs to its timeout), and counts each value.
func (j *job) deadLetters(n int) map[string]int {
	j.t.Helper()
	seen := map[string]int{}
	for _, r := range j.records(j.topics.DLQ(), n+1, 10*time.Second) {
		seen[string(r.Value)]++
	}
	return seen
}

// partitionRecords reads one partition of topic from its start up to, not including, until.
func (j *job) partitionRecords(topic string, partition int32, until int64) []*kgo.Record {
	j.t.Helper()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(j.t, changelog.ReadPartition(ctx, j.kc, topic, partition, 0, until, func(rs []*kgo.Record, _ int64) error {
		out = append(out, rs...)
		return nil
	}))
	return out
}

const scalePartitions = 6
