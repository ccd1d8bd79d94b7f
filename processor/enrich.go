package processor

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/lovoo/goka"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/partition"
	"github.com/enricher/enricher/topology"
)

// Headers enricher writes. Outputs and dead letters name their source record, so a consumer can
// drop the duplicates an at-least-once restart may produce.
const (
	HeaderSourceTopic     = "enricher-source-topic"
	HeaderSourcePartition = "enricher-source-partition"
	HeaderSourceOffset    = "enricher-source-offset"
	HeaderDLQReason       = "enricher-dlq-reason"
	HeaderDLQError        = "enricher-dlq-error"
	// HeaderDLQTruncated holds the original length of a dead letter whose value was cut to fit
	// Kafka's message size limit; the whole record stays in its source topic.
	HeaderDLQTruncated = "enricher-dlq-truncated"
)

// defaultDeadLetterMax caps dead-letter values when no size limit is configured, so that a dead
// letter plus its headers fits the producer's 1,000,000-byte message limit.
const defaultDeadLetterMax = 900 * 1024

// Enricher holds the callbacks of the job.
type Enricher struct {
	topics topology.Topics
	limits codecs.Limits
	stats  *Stats
	log    *slog.Logger
	dlqLog *rateLimiter
}

// NewEnricher returns the callbacks for topics; stats may be shared with a metrics endpoint.
func NewEnricher(topics topology.Topics, limits codecs.Limits, stats *Stats, log *slog.Logger) *Enricher {
	return &Enricher{topics: topics, limits: limits, stats: stats, log: log, dlqLog: newRateLimiter(10, time.Second)}
}

// Callbacks returns the callbacks for topology.Topics.Graph.
func (e *Enricher) Callbacks() topology.Callbacks {
	return topology.Callbacks{Input: e.onInput, Score: e.onScore}
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
	s, err := e.limits.DecodeScore(ctx.Key(), raw)
	if err != nil {
		e.deadLetter(ctx, raw, err)
		return
	}
	ctx.SetValue(s, pin)
	e.stats.ScoresApplied.Add(1)
}

// onInput emits one Output per input: the key's current score, or codecs.NoScore.
func (e *Enricher) onInput(ctx goka.Context, msg any) {
	e.stats.InputsConsumed.Add(1)
	raw, _ := msg.([]byte)
	if msg == nil {
		e.deadLetter(ctx, nil, &codecs.DecodeError{Reason: codecs.ReasonEmptyValue, Err: fmt.Errorf("input is a tombstone")})
		return
	}
	in, err := e.limits.DecodeInput(ctx.Key(), raw)
	if err != nil {
		e.deadLetter(ctx, raw, err)
		return
	}
	out := codecs.Output{Key: in.Key, Message: in.Message, Score: codecs.NoScore}
	switch v := ctx.Value().(type) {
	case codecs.Score:
		out.Score = v.Score
	case nil:
	default:
		ctx.Fail(fmt.Errorf("table value of key %q has type %T, want codecs.Score", in.Key, v))
	}
	ctx.Emit(goka.Stream(e.topics.Output), in.Key, out, goka.WithCtxEmitHeaders(sourceHeaders(ctx)))
	e.stats.OutputsEmitted.Add(1)
	if out.Score == codecs.NoScore {
		e.stats.OutputsNoScore.Add(1)
	}
	if ts := ctx.Timestamp(); !ts.IsZero() {
		e.stats.observeLatency(time.Since(ts))
	}
}

// deadLetter sends the record as it came to the DLQ, with the reason and the source in headers.
func (e *Enricher) deadLetter(ctx goka.Context, raw []byte, err error) {
	reason := codecs.ReasonOf(err)
	h := sourceHeaders(ctx)
	h[HeaderDLQReason] = []byte(reason)
	h[HeaderDLQError] = []byte(err.Error())
	limit := e.limits.MaxValueBytes
	if limit <= 0 {
		limit = defaultDeadLetterMax
	}
	if len(raw) > limit {
		h[HeaderDLQTruncated] = []byte(strconv.Itoa(len(raw)))
		raw = raw[:limit]
	}
	ctx.Emit(goka.Stream(e.topics.DLQ()), ctx.Key(), raw, goka.WithCtxEmitHeaders(h))
	e.stats.deadLettered(reason)
	if suppressed, ok := e.dlqLog.allow(); ok {
		e.log.Warn("record sent to dead-letter topic", "topic", string(ctx.Topic()), "partition", ctx.Partition(),
			"offset", ctx.Offset(), "key", ctx.Key(), "reason", string(reason), "error", err.Error(),
			"dlq", e.topics.DLQ(), "suppressed_since_last", suppressed)
	}
}

func sourceHeaders(ctx goka.Context) goka.Headers {
	return goka.Headers{
		HeaderSourceTopic:     []byte(ctx.Topic()),
		HeaderSourcePartition: []byte(strconv.Itoa(int(ctx.Partition()))),
		HeaderSourceOffset:    []byte(strconv.FormatInt(ctx.Offset(), 10)),
	}
}
