package codecs

import (
	"encoding/json"
	"fmt"
)

// ScoreCodec is the goka codec of the group table: it stores a Score as JSON, so the changelog
// is readable by any client and a dump is the table itself.
type ScoreCodec struct{}

// Encode accepts a Score or *Score.
func (ScoreCodec) Encode(value any) ([]byte, error) {
	switch v := value.(type) {
	case Score:
		return Encode(v)
	case *Score:
		return Encode(*v)
	default:
		return nil, fmt.Errorf("score codec: cannot encode %T", value)
	}
}

// Decode returns a Score. Table values are written by enricher, so a malformed one is an error.
func (ScoreCodec) Decode(data []byte) (any, error) {
	if w, ok := fastScore(data); ok {
		return Score{Key: *w.Key, Score: *w.Score}, nil
	}
	var s Score
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("score codec: %w", err)
	}
	return s, nil
}

// OutputCodec is the goka codec of the output topic.
type OutputCodec struct{}

// Encode accepts an Output or *Output.
func (OutputCodec) Encode(value any) ([]byte, error) {
	switch v := value.(type) {
	case Output:
		return Encode(v)
	case *Output:
		return Encode(*v)
	default:
		return nil, fmt.Errorf("output codec: cannot encode %T", value)
	}
}

// Decode returns an Output.
func (OutputCodec) Decode(data []byte) (any, error) {
	if o, ok := fastOutput(data); ok {
		return o, nil
	}
	var o Output
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, fmt.Errorf("output codec: %w", err)
	}
	return o, nil
}
