package codecs_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/enricher/enricher/codecs"
)

// The default format splices an input's JSON into its output, with the key's score.
func ExampleJSON() {
	var f codecs.JSON
	out, err := f.Enrich(nil, "alice", []byte(`{"key":"alice","message":"hello"}`), 10)
	fmt.Println(string(out), err)
	_, err = f.Enrich(nil, "bob", []byte(`{"key":"alice","message":"hi"}`), codecs.NoScore)
	fmt.Println(codecs.ReasonOf(err))
	// Output:
	// {"key":"alice","message":"hello","score":10} <nil>
	// key_mismatch
}

// A format of the caller's own: inputs are plain text and outputs "text|score".
func ExampleTyped() {
	f := codecs.Typed[string]{
		DecodeInput: func(_ string, value []byte) (string, error) {
			if len(value) == 0 {
				return "", codecs.Reject(codecs.ReasonEmptyValue, "no text")
			}
			return strings.ToUpper(string(value)), nil
		},
		DecodeScore: func(_ string, value []byte) (int64, error) {
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil {
				return 0, codecs.Reject(codecs.ReasonWrongType, "score: %v", err)
			}
			return n, nil
		},
		EncodeOutput: func(dst []byte, in string, score int64) ([]byte, error) {
			return strconv.AppendInt(append(append(dst, in...), '|'), score, 10), nil
		},
	}
	score, _ := f.Score("k", []byte("42"))
	out, _ := f.Enrich(nil, "k", []byte("hello"), score)
	fmt.Println(string(out))
	_, err := f.Score("k", []byte("many"))
	var bad *codecs.DecodeError
	fmt.Println(errors.As(err, &bad), bad.Reason)
	// Output:
	// HELLO|42
	// true wrong_type
}

// Every reason a record can be dead-lettered with, as they appear in headers and metrics.
func ExampleReasons() {
	for _, r := range codecs.Reasons() {
		fmt.Print(r, " ")
	}
	fmt.Println()
	// Output:
	// empty_value invalid_utf8 invalid_json wrong_type missing_field missing_key key_mismatch too_large missing_timestamp invalid_record output_too_large score_from_future not_wire_format unknown_schema_id schema_mismatch
}

// Avro records through a schema registry: an order of any record schema comes back as the same
// record with a field "tier" added; its schema is registered under the output topic's subject.
// (No output: it needs a registry.)
func ExampleNewAvro() {
	f, err := codecs.NewAvro(codecs.AvroConfig{
		Registry:         codecs.Registry{URL: "http://127.0.0.1:8081"},
		OutputSubject:    "orders-enriched-value",
		ScoreField:       "tier",
		OutputScoreField: "tier",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var _ codecs.Format = f // processor.Config{Format: f, ...}
}

// JSON records checked against JSON Schemas in a schema registry: an input object of any schema
// comes back as the same object with a property "tier" added; its schema, the input's with that
// property, is registered under the output topic's subject. (No output: it needs a registry.)
func ExampleNewJSONSchema() {
	f, err := codecs.NewJSONSchema(codecs.JSONSchemaConfig{
		Registry:         codecs.Registry{URL: "http://127.0.0.1:8081"},
		OutputSubject:    "orders-enriched-value",
		ScoreField:       "tier",
		OutputScoreField: "tier",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var _ codecs.Format = f // processor.Config{Format: f, ...}
}

// Protocol Buffers messages through a schema registry: a message of any type comes back with an
// int64 field "tier" added, numbered after the message's highest field number; the .proto
// file with that field is registered under the output topic's subject. (No output: it needs a
// registry.)
func ExampleNewProtobuf() {
	f, err := codecs.NewProtobuf(codecs.ProtobufConfig{
		Registry:         codecs.Registry{URL: "http://127.0.0.1:8081"},
		OutputSubject:    "orders-enriched-value",
		ScoreField:       "tier",
		OutputScoreField: "tier",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var _ codecs.Format = f // processor.Config{Format: f, ...}
}

// Scores in one format and inputs in another: here any JSON object with an integer "tier" as
// the score record, and the default JSON shape for inputs and outputs.
func ExampleSplit() {
	f := codecs.Split{Inputs: codecs.JSON{}, Scores: codecs.JSONMerge{ScoreField: "tier"}}
	score, err := f.Score("alice", []byte(`{"customer":"alice","tier":3}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := f.Enrich(nil, "alice", []byte(`{"key":"alice","message":"hi"}`), score)
	fmt.Println(score, string(out), err)
	// Output: 3 {"key":"alice","message":"hi","score":3} <nil>
}
