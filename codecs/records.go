package codecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// NoScore is the score an Output carries while its key has no score.
const NoScore int64 = -1

// Input is a message to enrich.
type Input struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

// Score is the latest score of a key; it is also the value stored in the group table.
type Score struct {
	Key   string `json:"key"`
	Score int64  `json:"score"`
}

// Output is an Input enriched with the score its key had when it was processed.
type Output struct {
	Key     string `json:"key"`
	Message string `json:"message"`
	Score   int64  `json:"score"`
}

// Reason names why a record could not be decoded. The values are stable: they appear in
// dead-letter headers and metrics.
type Reason string

// The reasons a record is rejected.
const (
	ReasonEmptyValue   Reason = "empty_value"
	ReasonInvalidUTF8  Reason = "invalid_utf8"
	ReasonInvalidJSON  Reason = "invalid_json"
	ReasonWrongType    Reason = "wrong_type"
	ReasonMissingField Reason = "missing_field"
	ReasonMissingKey   Reason = "missing_key"
	ReasonKeyMismatch  Reason = "key_mismatch"
	ReasonTooLarge     Reason = "too_large"
	// ReasonMissingTimestamp is a score without a record timestamp under the as-of join: it
	// cannot be placed in its key's history.
	ReasonMissingTimestamp Reason = "missing_timestamp"
	// ReasonInvalidRecord is the reason of a *DecodeError a Format returned without one.
	ReasonInvalidRecord Reason = "invalid_record"
	// ReasonOutputTooLarge is an input whose output is larger than the output topic takes (its
	// max.message.bytes, or the producer's batch limit): the write could never succeed.
	ReasonOutputTooLarge Reason = "output_too_large"
	// ReasonScoreFromFuture is a score, under the as-of join, stamped further ahead of the
	// clock than the job allows: kept, it would move its key's history window and drop the
	// versions inputs still need.
	ReasonScoreFromFuture Reason = "score_from_future"
	// ReasonNotWireFormat is a value of a registry format that does not start with the
	// Confluent wire format's header (a zero byte, then a 4-byte schema ID).
	ReasonNotWireFormat Reason = "not_wire_format"
	// ReasonUnknownSchema is a value whose schema ID the schema registry does not know.
	ReasonUnknownSchema Reason = "unknown_schema_id"
	// ReasonSchemaMismatch is a value that cannot be read with the schema its ID names.
	ReasonSchemaMismatch Reason = "schema_mismatch"
)

// Reasons returns every Reason this package defines, for metrics that want a series per reason
// from the start. Each call returns a new slice.
func Reasons() []Reason {
	return []Reason{ReasonEmptyValue, ReasonInvalidUTF8, ReasonInvalidJSON, ReasonWrongType,
		ReasonMissingField, ReasonMissingKey, ReasonKeyMismatch, ReasonTooLarge, ReasonMissingTimestamp,
		ReasonInvalidRecord, ReasonOutputTooLarge, ReasonScoreFromFuture, ReasonNotWireFormat, ReasonUnknownSchema,
		ReasonSchemaMismatch}
}

// DecodeError is a record that cannot be processed, with the reason why.
type DecodeError struct {
	Reason Reason
	Err    error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("%s: %v", e.Reason, e.Err) }
func (e *DecodeError) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of a *DecodeError in err's chain: ReasonInvalidRecord for one
// without a reason, and "" if the chain holds no *DecodeError.
func ReasonOf(err error) Reason {
	var de *DecodeError
	if !errors.As(err, &de) {
		return ""
	}
	if de.Reason == "" {
		return ReasonInvalidRecord
	}
	return de.Reason
}

// Reject returns a *DecodeError with reason r and a message made as fmt.Errorf makes it: what a
// Format returns for a record it cannot read.
func Reject(r Reason, format string, args ...any) error {
	return &DecodeError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// Limits bound what a decoder accepts.
type Limits struct {
	// MaxValueBytes rejects larger values with ReasonTooLarge; 0 means no limit.
	MaxValueBytes int
}

// wireInput and wireScore tell a missing field from a zero one.
type wireInput struct {
	Key     *string `json:"key"`
	Message *string `json:"message"`
}

type wireScore struct {
	Key   *string `json:"key"`
	Score *int64  `json:"score"`
}

// DecodeInput decodes an input record's value; recordKey is the Kafka record key.
func (l Limits) DecodeInput(recordKey string, value []byte) (Input, error) {
	var w wireInput
	if err := l.check(value); err != nil {
		return Input{}, err
	}
	if fw, ok := fastInput(value); ok {
		w = fw
	} else if err := unmarshal(value, &w); err != nil {
		return Input{}, err
	}
	if w.Message == nil {
		return Input{}, Reject(ReasonMissingField, `input has no "message"`)
	}
	key, err := resolveKey(recordKey, w.Key)
	if err != nil {
		return Input{}, err
	}
	return Input{Key: key, Message: *w.Message}, nil
}

// AppendEnriched decodes value as the input of recordKey, as DecodeInput does, and appends to
// dst the JSON of the Output it becomes with score: the bytes Encode writes for that Output. An
// input in the layout Encode writes, with its key equal to the record key (nearly every input
// of a pipeline), is spliced into the output without being decoded into strings; any other goes
// through DecodeInput. On an error dst is returned as it was.
func (l Limits) AppendEnriched(dst []byte, recordKey string, value []byte, score int64) ([]byte, error) {
	if err := l.check(value); err != nil {
		return dst, err
	}
	if out, ok := spliceOutput(dst, recordKey, value, score); ok {
		return out, nil
	}
	in, err := l.DecodeInput(recordKey, value)
	if err != nil {
		return dst, err
	}
	return AppendOutput(dst, Output{Key: in.Key, Message: in.Message, Score: score}), nil
}

// DecodeScore decodes a score record's value; recordKey is the Kafka record key. A tombstone
// (nil value) is not a Score: callers handle it before decoding.
func (l Limits) DecodeScore(recordKey string, value []byte) (Score, error) {
	var w wireScore
	if err := l.check(value); err != nil {
		return Score{}, err
	}
	if fw, ok := fastScore(value); ok {
		w = fw
	} else if err := unmarshal(value, &w); err != nil {
		return Score{}, err
	}
	if w.Score == nil {
		return Score{}, Reject(ReasonMissingField, `score has no "score"`)
	}
	key, err := resolveKey(recordKey, w.Key)
	if err != nil {
		return Score{}, err
	}
	return Score{Key: key, Score: *w.Score}, nil
}

// DecodeInput decodes with no size limit.
func DecodeInput(recordKey string, value []byte) (Input, error) {
	return Limits{}.DecodeInput(recordKey, value)
}

// DecodeScore decodes with no size limit.
func DecodeScore(recordKey string, value []byte) (Score, error) {
	return Limits{}.DecodeScore(recordKey, value)
}

// check applies the checks every value passes before it is parsed.
func (l Limits) check(value []byte) error {
	if len(value) == 0 {
		return Reject(ReasonEmptyValue, "value is empty")
	}
	if l.MaxValueBytes > 0 && len(value) > l.MaxValueBytes {
		return Reject(ReasonTooLarge, "value has %d bytes, the limit is %d", len(value), l.MaxValueBytes)
	}
	if !utf8.Valid(value) {
		return Reject(ReasonInvalidUTF8, "value is not valid UTF-8")
	}
	return nil
}

// unmarshal is the general path: any JSON object layout.
func unmarshal(value []byte, into any) error {
	trimmed := bytes.TrimLeft(value, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Reject(ReasonInvalidJSON, "value is not a JSON object")
	}
	if err := json.Unmarshal(value, into); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return Reject(ReasonWrongType, "field %q: %v", typeErr.Field, err)
		}
		return Reject(ReasonInvalidJSON, "%v", err)
	}
	return nil
}

// resolveKey applies the key rule: the record key is the entity key; an absent or empty payload
// key takes it; a different payload key is rejected.
func resolveKey(recordKey string, payloadKey *string) (string, error) {
	if recordKey == "" {
		return "", Reject(ReasonMissingKey, "record has no key")
	}
	if payloadKey != nil && *payloadKey != "" && *payloadKey != recordKey {
		return "", Reject(ReasonKeyMismatch, "payload key %q differs from record key %q", *payloadKey, recordKey)
	}
	return recordKey, nil
}

// EnrichedSize is the room AppendEnriched needs for the output of an input value of recordKey
// whose strings need no escapes: the value, the record key should the value lack it, the field
// names and quotes that may come with it, and a score of up to 20 characters.
func EnrichedSize(recordKey string, value []byte) int { return len(value) + len(recordKey) + 40 }

// Encode returns the JSON of an Input, Score or Output, exactly as json.Marshal writes it.
func Encode[T Input | Score | Output](v T) ([]byte, error) {
	switch v := any(v).(type) {
	case Output:
		return AppendOutput(make([]byte, 0, 52+len(v.Key)+len(v.Message)), v), nil // 32 bytes of names, quotes and braces, 20 of score
	case Score:
		return appendScore(make([]byte, 0, 40+len(v.Key)), v), nil
	case Input:
		return appendInput(make([]byte, 0, 30+len(v.Key)+len(v.Message)), v), nil
	}
	b, err := json.Marshal(v) // not reached: the cases above are Encode's whole type set
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}
