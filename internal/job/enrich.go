package job

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/dlq"
	"github.com/enricher/enricher/internal/partition"
	"github.com/enricher/enricher/internal/stagetime"
	"github.com/enricher/enricher/internal/store"
	"github.com/enricher/enricher/topology"
)

// defaultDeadLetterMax caps dead-letter values when no size limit is configured, so that a dead
// letter plus its headers fits the producer's 1,000,000-byte message limit.
const defaultDeadLetterMax = 900 * 1024

// Sink writes what the callbacks send besides the table's changelog: outputs and dead letters.
type Sink interface {
	// Produce writes r and calls done once: with nil when r is acknowledged, or with the error
	// that failed it.
	Produce(r *kgo.Record, done func(error))
}

// Enricher holds the callbacks of the job. Outputs and dead letters go to its Sink, not through
// goka's Emit: goka's emit path built three header maps and a promise per record and was a
// third of the processor's CPU. Each send defers the input's commit (goka's DeferCommit) until
// the sink acknowledges it, so an input is committed only once its output is written, as with
// goka's Emit; a failed send fails the processor. Score changes go through goka's SetValue.
type Enricher struct {
	topics topology.Topics
	format codecs.Format
	// deadLetterMax caps the value a dead letter carries.
	deadLetterMax int
	stats         *Stats
	log           *slog.Logger
	dlqLog        *rateLimiter
	sink          Sink
	// scores holds the score cache of each partition the Runner opened; without one (goka's
	// tester) scores are read through goka's table.
	scores *store.Caches
	// names holds the source-topic header value of each input topic, made once.
	names map[string][]byte
	// history, when positive, makes the join as-of (see asOf): the table keeps each key's
	// scores of the last history by record timestamp.
	history time.Duration
	// maxAhead bounds how far ahead of the clock an as-of score may be stamped.
	maxAhead time.Duration
	// outputMax is the largest output record, in bytes as Kafka counts a record in a batch, the
	// output topic takes; 0 when not known (no check).
	outputMax int
	// stages, if set, takes the breakdown of sampled outputs' time.
	stages *stagetime.Tracker
}

// DefaultMaxScoreAhead is how far ahead of the clock a score may be stamped under the as-of
// join unless configured: beyond clock skew between producers, and short of the hours that a
// wrong clock or a unit mistake (seconds for milliseconds) produces.
const DefaultMaxScoreAhead = time.Hour

// batchOverhead is the bytes of a record batch's header in Kafka's format (v2), which a topic's
// max.message.bytes counts besides the record; recordOverhead bounds a record's own framing
// (length, attributes, timestamp and offset deltas, key and value lengths, header count).
const (
	batchOverhead  = 61
	recordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 5
)

// limitOutputs makes inputs whose output record would be larger than maxMessageBytes (the
// output topic's max.message.bytes, or the producer's batch limit if lower) go to the DLQ as
// codecs.ReasonOutputTooLarge: the write could never succeed, and sending it would fail the
// processor on the same input after every restart.
func (e *Enricher) limitOutputs(maxMessageBytes int) { e.outputMax = maxMessageBytes - batchOverhead }

// recordBytes bounds the bytes r takes in a record batch.
func recordBytes(r *kgo.Record) int {
	n := recordOverhead + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 5 + len(h.Key) + 5 + len(h.Value)
	}
	return n
}

// asOf makes the join as-of: an input gets the score whose timestamp is the latest at or before
// its own, even when scores are written out of timestamp order, from each key's scores of the
// last history (codecs.Versions). A score stamped more than maxAhead ahead of the clock goes to
// the DLQ: it would move the key's window past the versions inputs still need, for good.
func (e *Enricher) asOf(history, maxAhead time.Duration) { e.history, e.maxAhead = history, maxAhead }

// NewEnricher returns the callbacks for topics, reading and writing records in format and sending
// outputs and dead letters (values cut to deadLetterMax bytes; 0 for a default that fits Kafka's
// message limit) to sink; stats may be shared with a metrics endpoint.
func NewEnricher(topics topology.Topics, format codecs.Format, deadLetterMax int, stats *Stats, sink Sink, scores *store.Caches, log *slog.Logger) *Enricher {
	if deadLetterMax <= 0 {
		deadLetterMax = defaultDeadLetterMax
	}
	return &Enricher{topics: topics, format: format, deadLetterMax: deadLetterMax, stats: stats, sink: sink, scores: scores, log: log, dlqLog: newRateLimiter(10, time.Second),
		names: map[string][]byte{topics.Input: []byte(topics.Input), topics.Scores: []byte(topics.Scores)}}
}

// Callbacks returns the callbacks for topology.Topics.Graph.
func (e *Enricher) Callbacks() Callbacks {
	cb := Callbacks{Input: e.onInput, Score: e.onScore}
	if e.history > 0 {
		cb.Table = new(codecs.VersionsCodec)
	}
	return cb
}

// onScore applies a score record: a value sets the key's score, a tombstone deletes it. The
// changelog record is pinned to the partition of the score record.
func (e *Enricher) onScore(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	pin := goka.WithCtxEmitHeaders(goka.Headers{partition.HeaderPartition: []byte(strconv.Itoa(int(ctx.Partition())))})
	if msg == nil {
		if ctx.Key() == "" {
			e.deadLetter(ctx, raw, &codecs.DecodeError{Reason: codecs.ReasonMissingKey, Err: fmt.Errorf("tombstone has no key")})
			return
		}
		ctx.Delete(pin)
		e.stats.TombstonesApplied.Add(1)
		return
	}
	score, err := e.format.Score(ctx.Key(), raw)
	if err != nil {
		e.rejected(ctx, raw, err)
		return
	}
	if e.history > 0 {
		ts := ctx.Timestamp()
		if noTimestamp(ts) {
			e.deadLetter(ctx, raw, &codecs.DecodeError{Reason: codecs.ReasonMissingTimestamp,
				Err: fmt.Errorf("score has no timestamp: the as-of join cannot place it in its key's history")})
			return
		}
		if ahead := time.Until(ts); ahead > e.maxAhead {
			e.deadLetter(ctx, raw, &codecs.DecodeError{Reason: codecs.ReasonScoreFromFuture,
				Err: fmt.Errorf("score stamped %s, %s ahead of the clock (the bound is %s)", ts.UTC().Format(time.RFC3339Nano), ahead.Round(time.Second), e.maxAhead)})
			return
		}
		v, ok := e.versions(ctx)
		if !ok {
			return
		}
		v.Key = ctx.Key()
		v.Add(ts.UnixMilli(), score)
		v.Prune(e.history)
		ctx.SetValue(v, pin)
		e.stats.ScoresApplied.Add(1)
		return
	}
	ctx.SetValue(codecs.Score{Key: ctx.Key(), Score: score}, pin)
	e.stats.ScoresApplied.Add(1)
}

// rejected handles an error of the format: bad input (a *codecs.DecodeError) goes to the
// dead-letter topic; anything else is a failure that stops the processor, so the record is read
// again after the restart rather than dead-lettered.
func (e *Enricher) rejected(ctx goka.Context, raw []byte, err error) {
	if codecs.ReasonOf(err) == "" {
		fail(ctx, fmt.Errorf("%s/%d offset %d: %w", ctx.Topic(), ctx.Partition(), ctx.Offset(), err))
		return
	}
	e.deadLetter(ctx, raw, err)
}

// fail stops the processor over the record in hand and leaves the record uncommitted, so the
// next session reads it again; the callback must return after it. goka's Context.Fail panics
// out of the callback only while the partition runs: once the partition is stopping (another
// partition failed first, or a rebalance revoked it), it notes the error and returns, and goka
// commits the record when the callback returns. A registry outage lost inputs that way, one
// per failed restart. A deferred commit ended with the error makes goka drop the commit either
// way.
func fail(ctx goka.Context, err error) {
	ctx.DeferCommit()(err)
	ctx.Fail(err)
}

// noTimestamp reports a record whose timestamp Kafka marks as missing (-1; goka gives the zero
// time).
func noTimestamp(ts time.Time) bool { return ts.UnixMilli() < 0 }

// versions returns the key's score history, empty for a key without one; false when the
// processor failed over the record.
func (e *Enricher) versions(ctx goka.Context) (codecs.Versions, bool) {
	switch v := ctx.Value().(type) {
	case codecs.Versions:
		return v, true
	case nil:
		return codecs.Versions{}, true
	default:
		fail(ctx, fmt.Errorf("table value of key %q has type %T, want codecs.Versions", ctx.Key(), v))
		return codecs.Versions{}, false
	}
}

// scoreAsOf returns the score valid at the input's timestamp (the latest, for an input
// without one), or codecs.NoScore; false when the processor failed over the record.
func (e *Enricher) scoreAsOf(ctx goka.Context) (int64, bool) {
	ts := ctx.Timestamp()
	// The partition's cache holds each key's latest version: an input stamped at or after it,
	// nearly every input of a stream, needs no read and no decoding of the key's history.
	if c := e.scores.Get(ctx.Partition()); c != nil {
		score, since, found, err := c.Latest(ctx.Key())
		switch {
		case err != nil:
			fail(ctx, fmt.Errorf("score of key %q: %w", ctx.Key(), err))
			return codecs.NoScore, false
		case !found:
			return codecs.NoScore, true
		case noTimestamp(ts) || ts.UnixMilli() >= since:
			return score, true
		}
	}
	v, ok := e.versions(ctx)
	if !ok || len(v.List) == 0 {
		return codecs.NoScore, ok
	}
	if noTimestamp(ts) {
		return v.Latest().Score, true
	}
	score, found := v.ScoreAt(ts.UnixMilli())
	if !found {
		if v.Pruned {
			e.stats.AsOfOutsideHistory.Add(1)
		}
		return codecs.NoScore, true
	}
	return score, true
}

// onInput sends one Output per input: the key's current score, or codecs.NoScore.
func (e *Enricher) onInput(ctx goka.Context, msg any) {
	e.stats.InputsConsumed.Add(1)
	ts := ctx.Timestamp()
	span := e.stages.Start(ctx.Partition(), ctx.Offset(), ts)
	raw, _ := msg.([]byte)
	if msg == nil {
		e.deadLetter(ctx, nil, &codecs.DecodeError{Reason: codecs.ReasonEmptyValue, Err: fmt.Errorf("input is a tombstone")})
		return
	}
	score, ok := e.score(ctx)
	if !ok {
		return
	}
	key := ctx.Key()
	// One buffer holds the output's key, then its value.
	buf := append(make([]byte, 0, len(key)+codecs.EnrichedSize(key, raw)), key...)
	value, err := e.format.Enrich(buf[len(key):], key, raw, score)
	if err != nil {
		e.rejected(ctx, raw, err)
		return
	}
	o := new(outputRecord)
	o.rec = kgo.Record{Topic: e.topics.Output, Key: buf[:len(key):len(key)], Value: value, Timestamp: stamp(ts),
		Headers: e.appendSourceHeaders(o.headers[:0], o.nums[:0], ctx)}
	if e.outputMax > 0 {
		if n := recordBytes(&o.rec); n > e.outputMax {
			e.deadLetter(ctx, raw, &codecs.DecodeError{Reason: codecs.ReasonOutputTooLarge,
				Err: fmt.Errorf("the output record takes %d bytes, and topic %s takes at most %d", n, e.topics.Output, e.outputMax)})
			return
		}
	}
	e.sink.Produce(&o.rec, span.Send(ctx.DeferCommit()))
	e.stats.OutputsEmitted.Add(1)
	if score == codecs.NoScore {
		e.stats.OutputsNoScore.Add(1)
	}
	if !noTimestamp(ts) {
		e.stats.observeLatency(time.Since(ts))
	}
}

// stamp is the timestamp of a record written for an input of timestamp ts: the input's own, as
// Kafka Streams stamps its outputs, so event time carries on downstream and a replay writes the
// records the live run wrote; the time now for an input without one.
func stamp(ts time.Time) time.Time {
	if noTimestamp(ts) {
		return time.Now()
	}
	return ts
}

// score returns the score of the record's key, or codecs.NoScore: from the partition's score
// cache, or through goka's table where there is none; false when the processor failed over the
// record.
func (e *Enricher) score(ctx goka.Context) (int64, bool) {
	if e.history > 0 {
		return e.scoreAsOf(ctx)
	}
	if c := e.scores.Get(ctx.Partition()); c != nil {
		score, found, err := c.Score(ctx.Key())
		switch {
		case err != nil:
			fail(ctx, fmt.Errorf("score of key %q: %w", ctx.Key(), err))
			return codecs.NoScore, false
		case found:
			return score, true
		}
		return codecs.NoScore, true
	}
	switch v := ctx.Value().(type) {
	case codecs.Score:
		return v.Score, true
	case nil:
		return codecs.NoScore, true
	default:
		fail(ctx, fmt.Errorf("table value of key %q has type %T, want codecs.Score", ctx.Key(), v))
		return codecs.NoScore, false
	}
}

// deadLetter sends the record as it came to the DLQ, with the reason and the source in headers.
func (e *Enricher) deadLetter(ctx goka.Context, raw []byte, err error) {
	reason := codecs.ReasonOf(err)
	h, value := dlq.Mark(e.appendSourceHeaders(make([]kgo.RecordHeader, 0, 6), nil, ctx), raw, string(reason), err.Error(), e.deadLetterMax)
	e.send(ctx, &kgo.Record{Topic: e.topics.DLQ(), Key: []byte(ctx.Key()), Value: value, Headers: h, Timestamp: stamp(ctx.Timestamp())})
	e.stats.deadLettered(reason)
	if suppressed, ok := e.dlqLog.allow(); ok {
		e.log.Warn("record sent to dead-letter topic", "topic", string(ctx.Topic()), "partition", ctx.Partition(),
			"offset", ctx.Offset(), "key", ctx.Key(), "reason", string(reason), "error", err.Error(),
			"dlq", e.topics.DLQ(), "suppressed_since_last", suppressed)
	}
}

// send hands r to the sink; the input is committed once r is acknowledged.
func (e *Enricher) send(ctx goka.Context, r *kgo.Record) {
	e.sink.Produce(r, ctx.DeferCommit())
}

// outputRecord is an output record, its headers and the bytes of their numbers in one
// allocation.
type outputRecord struct {
	rec     kgo.Record
	headers [3]kgo.RecordHeader
	nums    [32]byte
}

// appendSourceHeaders appends to h the headers that name the record being processed, writing
// their numbers into nums.
func (e *Enricher) appendSourceHeaders(h []kgo.RecordHeader, nums []byte, ctx goka.Context) []kgo.RecordHeader {
	topic := string(ctx.Topic())
	name, ok := e.names[topic]
	if !ok {
		name = []byte(topic)
	}
	nums = strconv.AppendInt(nums, int64(ctx.Partition()), 10)
	part := len(nums)
	nums = strconv.AppendInt(nums, ctx.Offset(), 10)
	return append(h,
		kgo.RecordHeader{Key: dlq.HeaderSourceTopic, Value: name},
		kgo.RecordHeader{Key: dlq.HeaderSourcePartition, Value: nums[:part:part]},
		kgo.RecordHeader{Key: dlq.HeaderSourceOffset, Value: nums[part:]})
}
