package processor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/partition"
	"github.com/enricher/enricher/topology"
)

type harness struct {
	tt     *tester.Tester
	topics topology.Topics
	stats  *Stats
	out    *tester.QueueTracker
	dlq    *tester.QueueTracker
	table  *tester.QueueTracker
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	tt := tester.New(t)
	topics := topology.DefaultTopics()
	stats := NewStats()
	e := NewEnricher(topics, codecs.Limits{MaxValueBytes: 1024}, stats, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p, err := goka.NewProcessor(nil, topics.Graph(e.Callbacks()), goka.WithTester(tt), goka.WithNilHandling(goka.NilProcess))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &harness{tt: tt, topics: topics, stats: stats,
		out: tt.NewQueueTracker(topics.Output), dlq: tt.NewQueueTracker(topics.DLQ()), table: tt.NewQueueTracker(topics.Table())}
}

func (h *harness) score(key, value string) { h.tt.Consume(h.topics.Scores, key, []byte(value)) }
func (h *harness) tombstone(key string)    { h.tt.Consume(h.topics.Scores, key, nil) }
func (h *harness) input(key, value string) { h.tt.Consume(h.topics.Input, key, []byte(value)) }

func (h *harness) nextOutput(t *testing.T) (goka.Headers, codecs.Output) {
	t.Helper()
	hdr, key, v, ok := h.out.NextWithHeaders()
	require.True(t, ok, "expected an output")
	out, isOut := v.(codecs.Output)
	require.True(t, isOut, "output value %T", v)
	assert.Equal(t, key, out.Key)
	return hdr, out
}

func TestEnrichWithLatestScore(t *testing.T) {
	h := newHarness(t)
	h.score("a", `{"key":"a","score":1}`)
	h.score("a", `{"score":5}`)
	h.input("a", `{"key":"a","message":"hello"}`)
	h.input("b", `{"message":"nobody scored me"}`)

	hdr, out := h.nextOutput(t)
	assert.Equal(t, codecs.Output{Key: "a", Message: "hello", Score: 5}, out)
	assert.Equal(t, h.topics.Input, string(hdr[HeaderSourceTopic]))
	assert.Equal(t, "0", string(hdr[HeaderSourcePartition]))
	assert.Equal(t, "0", string(hdr[HeaderSourceOffset]))

	hdr, out = h.nextOutput(t)
	assert.Equal(t, codecs.Output{Key: "b", Message: "nobody scored me", Score: codecs.NoScore}, out)
	assert.Equal(t, "1", string(hdr[HeaderSourceOffset]))

	_, _, ok := h.out.Next()
	assert.False(t, ok, "exactly one output per input")
	assert.Equal(t, codecs.Score{Key: "a", Score: 5}, h.tt.TableValue(goka.GroupTable(goka.Group(h.topics.Group)), "a"))
	assert.Equal(t, int64(2), h.stats.ScoresApplied.Load())
	assert.Equal(t, int64(2), h.stats.OutputsEmitted.Load())
	assert.Equal(t, int64(1), h.stats.OutputsNoScore.Load())
}

func TestChangelogWritesArePinnedToTheScorePartition(t *testing.T) {
	h := newHarness(t)
	h.score("a", `{"score":3}`)
	hdr, key, _, ok := h.table.NextWithHeaders()
	require.True(t, ok)
	assert.Equal(t, "a", key)
	assert.Equal(t, "0", string(hdr[partition.HeaderPartition]))
}

func TestTombstoneDeletesScore(t *testing.T) {
	h := newHarness(t)
	h.score("a", `{"score":3}`)
	h.tombstone("a")
	h.input("a", `{"message":"m"}`)
	_, out := h.nextOutput(t)
	assert.Equal(t, codecs.NoScore, out.Score)
	assert.Nil(t, h.tt.TableValue(goka.GroupTable(goka.Group(h.topics.Group)), "a"))
	assert.Equal(t, int64(1), h.stats.TombstonesApplied.Load())
}

func TestBadRecordsGoToDLQAndProcessingContinues(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		topic, key, value string
		reason            codecs.Reason
	}{
		{h.topics.Input, "a", `{not json`, codecs.ReasonInvalidJSON},
		{h.topics.Input, "a", `{"key":"b","message":"m"}`, codecs.ReasonKeyMismatch},
		{h.topics.Scores, "a", `{"score":"7"}`, codecs.ReasonWrongType},
		{h.topics.Scores, "a", `{"score":99999999999999999999}`, codecs.ReasonWrongType},
		{h.topics.Input, "", `{"message":"m"}`, codecs.ReasonMissingKey},
		{h.topics.Input, "a", "", codecs.ReasonEmptyValue},
		{h.topics.Input, "a", "{\"message\":\"\xff\"}", codecs.ReasonInvalidUTF8},
		{h.topics.Input, "a", `{"message":"` + string(make([]byte, 2000)) + `"}`, codecs.ReasonTooLarge},
	} {
		h.tt.Consume(tc.topic, tc.key, []byte(tc.value))
		hdr, key, raw, ok := h.dlq.NextRawWithHeaders()
		require.True(t, ok, "dead letter for %q", tc.value)
		assert.Equal(t, tc.key, key)
		if len(tc.value) > 1024 {
			assert.Equal(t, tc.value[:1024], string(raw), "an oversized dead letter is cut to the limit")
			assert.Equal(t, fmt.Sprint(len(tc.value)), string(hdr[HeaderDLQTruncated]))
		} else {
			assert.Equal(t, tc.value, string(raw), "the dead letter carries the record as it came")
			assert.Empty(t, hdr[HeaderDLQTruncated])
		}
		assert.Equal(t, string(tc.reason), string(hdr[HeaderDLQReason]))
		assert.NotEmpty(t, hdr[HeaderDLQError])
		assert.Equal(t, tc.topic, string(hdr[HeaderSourceTopic]))
	}
	_, _, ok := h.out.Next()
	assert.False(t, ok, "bad inputs produce no output")
	hdr, _, raw, ok := h.dlq.NextRawWithHeaders()
	require.False(t, ok, "no other dead letters: %v %s", hdr, raw)

	h.score("a", `{"score":7}`)
	h.input("a", `{"message":"good"}`)
	_, out := h.nextOutput(t)
	assert.Equal(t, codecs.Output{Key: "a", Message: "good", Score: 7}, out)

	dlq := h.stats.DeadLettered()
	assert.Equal(t, int64(2), dlq[codecs.ReasonWrongType])
	assert.Equal(t, int64(1), dlq[codecs.ReasonKeyMismatch])
	var total int64
	for _, n := range dlq {
		total += n
	}
	assert.Equal(t, int64(8), total)
}

func TestRateLimiter(t *testing.T) {
	r := newRateLimiter(2, 1<<62)
	_, ok := r.allow()
	assert.True(t, ok)
	_, ok = r.allow()
	assert.True(t, ok)
	_, ok = r.allow()
	assert.False(t, ok)
	r.start = r.start.Add(-(1 << 62))
	suppressed, ok := r.allow()
	assert.True(t, ok)
	assert.Equal(t, 1, suppressed)
}
