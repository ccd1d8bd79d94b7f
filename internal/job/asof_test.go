package job

import (
	"strconv"
	"testing"
	"time"

	"github.com/lovoo/goka/storage"
	"github.com/lovoo/goka/tester"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/dlq"
	"github.com/enricher/enricher/internal/store"
)

// The as-of join: an input gets the score whose timestamp is the latest at or before its own,
// whatever order the scores were written in.
func TestAsOfJoin(t *testing.T) {
	h := newHarnessWith(t, nil, func(e *Enricher) { e.asOf(time.Hour, DefaultMaxScoreAhead) })
	t0 := time.UnixMilli(1_700_000_000_000)
	at := func(d time.Duration) tester.EmitOption { return tester.WithTime(t0.Add(d)) }
	h.tt.Consume(h.topics.Scores, "k", []byte(`{"key":"k","score":30}`), at(30*time.Second))
	h.tt.Consume(h.topics.Scores, "k", []byte(`{"key":"k","score":10}`), at(10*time.Second)) // written late
	for _, tc := range []struct {
		input time.Duration
		want  int64
	}{{5 * time.Second, codecs.NoScore}, {10 * time.Second, 10}, {20 * time.Second, 10}, {30 * time.Second, 30}, {time.Minute, 30}} {
		h.tt.Consume(h.topics.Input, "k", []byte(`{"key":"k","message":"m"}`), at(tc.input))
		_, out := h.nextOutput(t)
		assert.Equal(t, tc.want, out.Score, "input at %s", tc.input)
	}
	var last any
	for {
		_, v, ok := h.table.Next()
		if !ok {
			break
		}
		last = v
	}
	assert.Equal(t, codecs.Versions{Key: "k", List: []codecs.Version{{At: t0.Add(10 * time.Second).UnixMilli(), Score: 10},
		{At: t0.Add(30 * time.Second).UnixMilli(), Score: 30}}}, last, "the changelog holds the key's history")
}

// Versions older than the history window are pruned but for the one valid at its start; an
// input older than what is kept gets -1 and is counted.
func TestAsOfHistoryWindow(t *testing.T) {
	h := newHarnessWith(t, nil, func(e *Enricher) { e.asOf(time.Minute, DefaultMaxScoreAhead) })
	t0 := time.UnixMilli(1_700_000_000_000)
	at := func(d time.Duration) tester.EmitOption { return tester.WithTime(t0.Add(d)) }
	for i, d := range []time.Duration{0, 10 * time.Second, 20 * time.Second, 5 * time.Minute} {
		h.tt.Consume(h.topics.Scores, "k", []byte(`{"key":"k","score":`+strconv.Itoa(i+1)+`}`), at(d))
	}
	h.tt.Consume(h.topics.Input, "k", []byte(`{"key":"k","message":"m"}`), at(4*time.Minute+30*time.Second))
	_, out := h.nextOutput(t)
	assert.Equal(t, int64(3), out.Score, "the score valid at the window's start is kept")
	h.tt.Consume(h.topics.Input, "k", []byte(`{"key":"k","message":"m"}`), at(5*time.Second))
	_, out = h.nextOutput(t)
	assert.Equal(t, codecs.NoScore, out.Score)
	assert.Equal(t, int64(1), h.stats.AsOfOutsideHistory.Load())
}

func TestAsOfScoreWithoutTimestamp(t *testing.T) {
	h := newHarnessWith(t, nil, func(e *Enricher) { e.asOf(time.Hour, DefaultMaxScoreAhead) })
	h.tt.Consume(h.topics.Scores, "k", []byte(`{"key":"k","score":1}`), tester.WithTime(time.Time{}))
	_, hdr, ok := h.sink.next(h.topics.DLQ())
	assert.True(t, ok, "a score without a timestamp is dead-lettered")
	assert.Equal(t, string(codecs.ReasonMissingTimestamp), hdr[dlq.HeaderDLQReason])
}

// A score stamped further ahead of the clock than the bound goes to the DLQ and leaves the key's
// history as it was: kept, it would have moved the window past the versions inputs still need.
func TestAsOfScoreFromFuture(t *testing.T) {
	h := newHarnessWith(t, nil, func(e *Enricher) { e.asOf(time.Hour, time.Minute) })
	now := time.Now()
	h.tt.Consume(h.topics.Scores, "k", []byte(`{"key":"k","score":1}`), tester.WithTime(now.Add(-10*time.Minute)))
	h.tt.Consume(h.topics.Scores, "k", []byte(`{"key":"k","score":2}`), tester.WithTime(now.Add(30*time.Second)))
	h.tt.Consume(h.topics.Scores, "k", []byte(`{"key":"k","score":99}`), tester.WithTime(now.AddDate(10, 0, 0)))
	_, hdr, ok := h.sink.next(h.topics.DLQ())
	if assert.True(t, ok, "the score ten years ahead is dead-lettered") {
		assert.Equal(t, string(codecs.ReasonScoreFromFuture), hdr[dlq.HeaderDLQReason])
	}
	_, _, ok = h.sink.next(h.topics.DLQ())
	assert.False(t, ok, "a score within the bound (30 s ahead) is kept")
	h.tt.Consume(h.topics.Input, "k", []byte(`{"key":"k","message":"m"}`), tester.WithTime(now.Add(-5*time.Minute)))
	_, out := h.nextOutput(t)
	assert.Equal(t, int64(1), out.Score, "the history inputs need is still there")
	assert.Equal(t, int64(1), h.stats.DeadLettered()[codecs.ReasonScoreFromFuture])
}

// Under the as-of join the partition's cache answers inputs stamped at or after their key's
// latest version; an older input reads the key's history through goka's table. goka's tester
// keeps that table empty here, so an older input shows where it was answered.
func TestAsOfJoinReadsTheLatestVersionFromTheCache(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	c := store.NewHistoryCache(storage.NewMemory(), 4)
	require.NoError(t, c.Open())
	require.NoError(t, c.MarkRecovered())
	v, err := codecs.VersionsCodec{}.Encode(codecs.Versions{Key: "k", List: []codecs.Version{
		{At: t0.Add(10 * time.Second).UnixMilli(), Score: 10}, {At: t0.Add(30 * time.Second).UnixMilli(), Score: 30}}})
	require.NoError(t, err)
	require.NoError(t, c.Set("k", v))
	caches := &store.Caches{}
	caches.Add(0, c)
	h := newHarnessWith(t, caches, func(e *Enricher) { e.asOf(time.Hour, DefaultMaxScoreAhead) })
	for _, tc := range []struct {
		key   string
		input time.Duration
		want  int64
	}{
		{"k", 30 * time.Second, 30},             // at the latest version: the cache
		{"k", time.Minute, 30},                  // after it: the cache
		{"k", 20 * time.Second, codecs.NoScore}, // before it: the (empty) table
		{"other", time.Minute, codecs.NoScore},  // no score at all
	} {
		h.tt.Consume(h.topics.Input, tc.key, []byte(`{"key":"`+tc.key+`","message":"m"}`), tester.WithTime(t0.Add(tc.input)))
		_, out := h.nextOutput(t)
		assert.Equal(t, tc.want, out.Score, "%s at %s", tc.key, tc.input)
	}
}
