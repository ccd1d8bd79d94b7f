package codecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// JSONMerge is a Format for JSON records of the producer's own shape. An input is any JSON
// object; its output is the same object, every field and nested value kept byte for byte and in
// order, with ScoreField set to the score (added last, or replacing a field of that name where
// it stood). A score record is any JSON object whose ScoreField is an integer. Where a value has
// KeyField as a string, it must equal the Kafka record key, as in the JSON format: the join key
// is always the record key.
type JSONMerge struct {
	Limits
	// KeyField names the field that, when present, must hold the record key. Empty is "key".
	KeyField string
	// ScoreField names the score's field in score records and in outputs. Empty is "score".
	ScoreField string
}

func (m JSONMerge) keyField() string {
	if m.KeyField == "" {
		return "key"
	}
	return m.KeyField
}

func (m JSONMerge) scoreField() string {
	if m.ScoreField == "" {
		return "score"
	}
	return m.ScoreField
}

// member is one top-level field of an object: its name and where its value's bytes are.
type member struct {
	name       string
	start, end int // value bytes: value[start:end]
}

// members reads the top level of a JSON object, leaving the values as they are.
func (m JSONMerge) members(value []byte) ([]member, error) {
	if err := m.check(value); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimLeft(value, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(value) {
		return nil, Reject(ReasonInvalidJSON, "value is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	if _, err := dec.Token(); err != nil { // {
		return nil, Reject(ReasonInvalidJSON, "%v", err)
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, Reject(ReasonInvalidJSON, "%v", err)
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, Reject(ReasonInvalidJSON, "%v", err)
		}
		end := int(dec.InputOffset())
		out = append(out, member{name: name, start: end - len(raw), end: end})
	}
	if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) { // }
		return nil, Reject(ReasonInvalidJSON, "%v", err)
	}
	return out, nil
}

// checkKey applies the key rule to the value's key field, if it has one as a string.
func (m JSONMerge) checkKey(recordKey string, value []byte, ms []member) error {
	var payloadKey *string
	for _, f := range ms {
		if f.name != m.keyField() {
			continue
		}
		var s string
		if json.Unmarshal(value[f.start:f.end], &s) == nil {
			payloadKey = &s
		}
	}
	_, err := resolveKey(recordKey, payloadKey)
	return err
}

// Score returns the integer in the value's ScoreField.
func (m JSONMerge) Score(key string, value []byte) (int64, error) {
	ms, err := m.members(value)
	if err != nil {
		return 0, err
	}
	if err := m.checkKey(key, value, ms); err != nil {
		return 0, err
	}
	return m.scoreIn(value, ms)
}

// scoreIn returns the integer in ScoreField of value, whose top-level fields are ms.
func (m JSONMerge) scoreIn(value []byte, ms []member) (int64, error) {
	var raw []byte
	for _, f := range ms {
		if f.name == m.scoreField() {
			raw = value[f.start:f.end]
		}
	}
	if raw == nil || string(raw) == "null" {
		return 0, Reject(ReasonMissingField, "score record has no %q", m.scoreField())
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, Reject(ReasonWrongType, "field %q is %s, not an integer", m.scoreField(), raw)
	}
	return n, nil
}

// Enrich appends to dst the input object with ScoreField set to score.
func (m JSONMerge) Enrich(dst []byte, key string, value []byte, score int64) ([]byte, error) {
	ms, err := m.members(value)
	if err != nil {
		return dst, err
	}
	if err := m.checkKey(key, value, ms); err != nil {
		return dst, err
	}
	return m.splice(dst, value, ms, score), nil
}

// splice appends to dst the object value, whose top-level fields are ms, with ScoreField set
// to score.
func (m JSONMerge) splice(dst, value []byte, ms []member, score int64) []byte {
	out := append(dst, '{')
	replaced := false
	for i, f := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendName(out, f.name)
		out = append(out, ':')
		if f.name == m.scoreField() {
			out = strconv.AppendInt(out, score, 10)
			replaced = true
			continue
		}
		out = append(out, value[f.start:f.end]...)
	}
	if !replaced {
		if len(ms) > 0 {
			out = append(out, ',')
		}
		out = appendName(out, m.scoreField())
		out = append(out, ':')
		out = strconv.AppendInt(out, score, 10)
	}
	return append(out, '}')
}

// appendName appends a field name as a JSON string.
func appendName(dst []byte, name string) []byte {
	if plainString(name) {
		return append(append(append(dst, '"'), name...), '"')
	}
	b, _ := json.Marshal(name) // a string always marshals
	return append(dst, b...)
}
