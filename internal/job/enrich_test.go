package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/lovoo/goka/tester"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/dlq"
	"github.com/enricher/enricher/internal/partition"
	"github.com/enricher/enricher/internal/store"
	"github.com/enricher/enricher/topology"
)

// recordSink keeps what the callbacks send; fail, when set, fails every send.
type recordSink struct {
	mu   sync.Mutex
	recs []*kgo.Record
	fail error
}

func (s *recordSink) Produce(r *kgo.Record, done func(error)) {
	s.mu.Lock()
	s.recs = append(s.recs, r)
	err := s.fail
	s.mu.Unlock()
	done(err)
}

// next removes and returns the first record sent to topic, with its headers as a map.
func (s *recordSink) next(topic string) (*kgo.Record, map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.recs {
		if r.Topic == topic {
			s.recs = append(s.recs[:i], s.recs[i+1:]...)
			h := map[string]string{}
			for _, kv := range r.Headers {
				h[kv.Key] = string(kv.Value)
			}
			return r, h, true
		}
	}
	return nil, nil, false
}

type harness struct {
	tt     *tester.Tester
	topics topology.Topics
	stats  *Stats
	sink   *recordSink
	table  *tester.QueueTracker
	done   chan error
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

// newHarnessWith runs the callbacks on goka's tester, with scores as the Runner's score caches.
func newHarnessWith(t *testing.T, scores *store.Caches, configure ...func(*Enricher)) *harness {
	t.Helper()
	tt := tester.New(t)
	topics := topology.DefaultTopics()
	stats := NewStats()
	sink := &recordSink{}
	e := NewEnricher(topics, codecs.JSON{Limits: codecs.Limits{MaxValueBytes: 1024}}, 1024, stats, sink, scores, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, c := range configure {
		c(e)
	}
	p, err := goka.NewProcessor(nil, Graph(topics, e.Callbacks()), goka.WithTester(tt), goka.WithNilHandling(goka.NilProcess))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{tt: tt, topics: topics, stats: stats, sink: sink, table: tt.NewQueueTracker(topics.Table()), done: make(chan error, 1)}
	go func() { h.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			require.NoError(t, err)
		default: // a test took the processor's result
		}
	})
	return h
}

func (h *harness) score(key, value string) { h.tt.Consume(h.topics.Scores, key, []byte(value)) }
func (h *harness) tombstone(key string)    { h.tt.Consume(h.topics.Scores, key, nil) }
func (h *harness) input(key, value string) { h.tt.Consume(h.topics.Input, key, []byte(value)) }

func (h *harness) nextOutput(t *testing.T) (map[string]string, codecs.Output) {
	t.Helper()
	r, hdr, ok := h.sink.next(h.topics.Output)
	require.True(t, ok, "expected an output")
	v, err := codecs.OutputCodec{}.Decode(r.Value)
	require.NoError(t, err)
	out := v.(codecs.Output)
	assert.Equal(t, string(r.Key), out.Key)
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
	assert.Equal(t, map[string]string{dlq.HeaderSourceTopic: h.topics.Input, dlq.HeaderSourcePartition: "0", dlq.HeaderSourceOffset: "0"}, hdr)

	hdr, out = h.nextOutput(t)
	assert.Equal(t, codecs.Output{Key: "b", Message: "nobody scored me", Score: codecs.NoScore}, out)
	assert.Equal(t, "1", hdr[dlq.HeaderSourceOffset])

	_, _, ok := h.sink.next(h.topics.Output)
	assert.False(t, ok, "exactly one output per input")
	assert.Equal(t, codecs.Score{Key: "a", Score: 5}, h.tt.TableValue(goka.GroupTable(goka.Group(h.topics.Group)), "a"))
	assert.Equal(t, int64(2), h.stats.ScoresApplied.Load())
	assert.Equal(t, int64(2), h.stats.OutputsEmitted.Load())
	assert.Equal(t, int64(1), h.stats.OutputsNoScore.Load())
}

// Where the Runner opened a store, inputs read their score from its score cache, not through
// goka's table (which goka's tester keeps empty here).
func TestInputsReadTheScoreCache(t *testing.T) {
	c := store.NewCache(storage.NewMemory(), 4)
	require.NoError(t, c.Open())
	require.NoError(t, c.MarkRecovered())
	v, err := codecs.Encode(codecs.Score{Key: "a", Score: 42})
	require.NoError(t, err)
	require.NoError(t, c.Set("a", v))
	caches := &store.Caches{}
	caches.Add(0, c)
	h := newHarnessWith(t, caches)

	h.input("a", `{"message":"m"}`)
	h.input("b", `{"message":"m"}`)
	_, out := h.nextOutput(t)
	assert.Equal(t, codecs.Output{Key: "a", Message: "m", Score: 42}, out)
	_, out = h.nextOutput(t)
	assert.Equal(t, codecs.Output{Key: "b", Message: "m", Score: codecs.NoScore}, out)
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
		r, hdr, ok := h.sink.next(h.topics.DLQ())
		require.True(t, ok, "dead letter for %q", tc.value)
		assert.Equal(t, tc.key, string(r.Key))
		raw := r.Value
		if len(tc.value) > 1024 {
			assert.Equal(t, tc.value[:1024], string(raw), "an oversized dead letter is cut to the limit")
			assert.Equal(t, fmt.Sprint(len(tc.value)), hdr[dlq.HeaderDLQTruncated])
		} else {
			assert.Equal(t, tc.value, string(raw), "the dead letter carries the record as it came")
			assert.Empty(t, hdr[dlq.HeaderDLQTruncated])
		}
		assert.Equal(t, string(tc.reason), hdr[dlq.HeaderDLQReason])
		assert.NotEmpty(t, hdr[dlq.HeaderDLQError])
		assert.Equal(t, tc.topic, hdr[dlq.HeaderSourceTopic])
	}
	_, _, ok := h.sink.next(h.topics.Output)
	assert.False(t, ok, "bad inputs produce no output")
	r, hdr, ok := h.sink.next(h.topics.DLQ())
	require.False(t, ok, "no other dead letters: %v %v", hdr, r)

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

// A send that fails stops the processor with the sink's error, as a failed goka emit would: the
// input is not committed, and the restarted processor reads it again.
func TestFailedSendStopsTheProcessor(t *testing.T) {
	h := newHarness(t)
	h.sink.mu.Lock()
	h.sink.fail = errors.New("broker says no")
	h.sink.mu.Unlock()
	h.input("a", `{"message":"m"}`)
	select {
	case err := <-h.done:
		assert.ErrorContains(t, err, "broker says no")
	case <-time.After(10 * time.Second):
		t.Fatal("the processor kept running after a failed send")
	}
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

// pipeFormat is a Format of the test's own: an input is "message", an output "message|score"
// and a score a decimal number; a value starting with "!" is bad input, and one starting with "?"
// a failure of the format itself (a registry that cannot be reached, say).
func pipeFormat() codecs.Format {
	return codecs.Typed[string]{
		DecodeInput: func(_ string, value []byte) (string, error) {
			switch {
			case bytes.HasPrefix(value, []byte("!")):
				return "", codecs.Reject(codecs.ReasonWrongType, "not a message")
			case bytes.HasPrefix(value, []byte("?")):
				return "", errors.New("registry unreachable")
			}
			return string(value), nil
		},
		DecodeScore: func(_ string, value []byte) (int64, error) {
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil {
				return 0, &codecs.DecodeError{Err: err}
			}
			return n, nil
		},
		EncodeOutput: func(dst []byte, in string, score int64) ([]byte, error) {
			return strconv.AppendInt(append(append(dst, in...), '|'), score, 10), nil
		},
	}
}

func TestFormatOfTheCallersOwn(t *testing.T) {
	h := newHarnessWith(t, nil, func(e *Enricher) { e.format = pipeFormat() })
	h.score("a", "7")
	h.score("b", "seven")
	h.input("a", "hello")
	h.input("b", "!bad")
	h.input("b", "hi")

	r, _, ok := h.sink.next(h.topics.Output)
	require.True(t, ok)
	assert.Equal(t, "hello|7", string(r.Value))
	r, _, ok = h.sink.next(h.topics.Output)
	require.True(t, ok)
	assert.Equal(t, "hi|-1", string(r.Value), "the score that did not decode was not applied")
	assert.Equal(t, map[codecs.Reason]int64{codecs.ReasonInvalidRecord: 1, codecs.ReasonWrongType: 1}, h.stats.DeadLettered())
}

// A format's own failure is not bad input: the processor stops (and the Runner restarts it)
// instead of dead-lettering a good record.
func TestFormatFailureStopsTheProcessor(t *testing.T) {
	h := newHarnessWith(t, nil, func(e *Enricher) { e.format = pipeFormat() })
	h.input("a", "?")
	select {
	case err := <-h.done:
		assert.ErrorContains(t, err, "registry unreachable")
	case <-time.After(10 * time.Second):
		t.Fatal("the processor kept running after the format failed")
	}
	assert.Empty(t, h.stats.DeadLettered())
	_, _, ok := h.sink.next(h.topics.DLQ())
	assert.False(t, ok, "nothing dead-lettered")
}

// Outputs and dead letters carry their input's timestamp, as Kafka Streams stamps them: event
// time carries on downstream, and a replay writes what the live run wrote. An input without a
// timestamp gets the time it was processed.
func TestOutputsCarryTheInputTimestamp(t *testing.T) {
	h := newHarness(t)
	at := time.Date(2026, 1, 15, 10, 30, 0, 123_000_000, time.UTC)
	h.tt.Consume(h.topics.Input, "a", []byte(`{"message":"m"}`), tester.WithTime(at))
	h.tt.Consume(h.topics.Input, "a", []byte(`not json`), tester.WithTime(at.Add(time.Second)))
	before := time.Now()
	h.input("b", `{"message":"n"}`)

	r, _, ok := h.sink.next(h.topics.Output)
	require.True(t, ok)
	assert.True(t, at.Equal(r.Timestamp), "output stamped %s, want the input's %s", r.Timestamp, at)
	r, _, ok = h.sink.next(h.topics.DLQ())
	require.True(t, ok)
	assert.True(t, at.Add(time.Second).Equal(r.Timestamp), "dead letter stamped %s", r.Timestamp)
	r, _, ok = h.sink.next(h.topics.Output)
	require.True(t, ok)
	assert.False(t, r.Timestamp.Before(before), "an input without a timestamp: its output is stamped when processed")
}

// An input whose output record is larger than the output topic takes goes to the DLQ as
// output_too_large; a smaller one is enriched. Sent, the large output would fail the processor
// on the same input after every restart.
func TestOutputTooLargeIsDeadLettered(t *testing.T) {
	h := newHarnessWith(t, nil, func(e *Enricher) { e.limitOutputs(800) })
	h.input("k", `{"key":"k","message":"`+strings.Repeat("m", 400)+`"}`)
	_, out := h.nextOutput(t)
	assert.Len(t, out.Message, 400)
	h.input("k", `{"key":"k","message":"`+strings.Repeat("m", 600)+`"}`)
	_, hdr, ok := h.sink.next(h.topics.DLQ())
	if assert.True(t, ok, "the input whose output is too large is dead-lettered") {
		assert.Equal(t, string(codecs.ReasonOutputTooLarge), hdr[dlq.HeaderDLQReason])
		assert.Contains(t, hdr[dlq.HeaderDLQError], "takes at most 739")
	}
	_, _, ok = h.sink.next(h.topics.Output)
	assert.False(t, ok, "no output for it")
}

// gokaContext is goka.Context under a name of its own, so that stoppingContext can embed it.
type gokaContext = goka.Context

// stoppingContext is the goka.Context of a record handled while its partition is stopping
// (another partition failed first, or a rebalance revoked it): goka's Fail then notes the error
// and returns instead of panicking, and goka commits the record when the callback returns unless
// a deferred commit holds it. It records the deferred commits and how they ended.
type stoppingContext struct {
	gokaContext // nil: a method the test does not define panics
	key         string
	failed      []error
	deferred    int
	ended       []error
}

func (c *stoppingContext) Key() string              { return c.key }
func (c *stoppingContext) Topic() goka.Stream       { return goka.Stream(topology.DefaultTopics().Input) }
func (c *stoppingContext) Partition() int32         { return 2 }
func (c *stoppingContext) Offset() int64            { return 41 }
func (c *stoppingContext) Timestamp() time.Time     { return time.UnixMilli(1_700_000_000_000) }
func (c *stoppingContext) Headers() goka.Headers    { return nil }
func (c *stoppingContext) Value() any               { return codecs.Score{Key: c.key, Score: 3} }
func (c *stoppingContext) Fail(err error)           { c.failed = append(c.failed, err) }
func (c *stoppingContext) Context() context.Context { return context.Background() }
func (c *stoppingContext) DeferCommit() func(error) {
	c.deferred++
	return func(err error) { c.ended = append(c.ended, err) }
}

// A record whose format fails while its partition is stopping stays uncommitted: the callback
// holds its commit with the error, so goka does not commit it when the callback returns, and
// sends nothing for it. Without the hold a registry outage lost one input per failed restart.
func TestFailureWhileStoppingKeepsTheRecordUncommitted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		call  func(e *Enricher, ctx goka.Context, msg any)
	}{
		{"input the format cannot read now", "?", func(e *Enricher, ctx goka.Context, msg any) { e.onInput(ctx, msg) }},
		{"score the format cannot read now", "?", func(e *Enricher, ctx goka.Context, msg any) {
			e.format = codecs.Typed[string]{
				DecodeInput:  func(string, []byte) (string, error) { return "", nil },
				DecodeScore:  func(string, []byte) (int64, error) { return 0, errors.New("registry unreachable") },
				EncodeOutput: func(dst []byte, _ string, _ int64) ([]byte, error) { return dst, nil },
			}
			e.onScore(ctx, msg)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recordSink{}
			e := NewEnricher(topology.DefaultTopics(), pipeFormat(), 1024, NewStats(), sink, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			ctx := &stoppingContext{key: "a"}
			tc.call(e, ctx, []byte(tc.value))
			require.Len(t, ctx.failed, 1, "the processor was failed")
			assert.ErrorContains(t, ctx.failed[0], "registry unreachable")
			assert.Equal(t, 1, ctx.deferred, "the record's commit was held")
			require.Len(t, ctx.ended, 1)
			assert.ErrorContains(t, ctx.ended[0], "registry unreachable", "the hold ended with the error, so goka drops the commit")
			assert.Empty(t, sink.recs, "nothing sent for the record")
		})
	}
}
