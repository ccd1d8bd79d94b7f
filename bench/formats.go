package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/enricher/enricher/codecs"
)

// recordFormat writes the workload's inputs and scores, and reads outputs, in the wire format a
// system reads and writes.
type recordFormat interface {
	input(key, message string) []byte
	score(key string, s int64) []byte
	output(value []byte) (codecs.Output, error)
}

// jsonRecords is the JSON every system reads by default: Input{key, message} and
// Score{key, score} in, Output{key, message, score} out.
type jsonRecords struct{}

func (jsonRecords) input(key, message string) []byte { return input(key, message) }

func (jsonRecords) score(key string, s int64) []byte {
	v, _ := json.Marshal(codecs.Score{Key: key, Score: s})
	return v
}

func (jsonRecords) output(value []byte) (codecs.Output, error) {
	v, err := codecs.OutputCodec{}.Decode(value)
	if err != nil {
		return codecs.Output{}, err
	}
	return v.(codecs.Output), nil
}

// The workload's records in Avro: the same fields as the JSON records. An output is the input
// record with the score appended, as enricher's Avro format writes it.
const (
	avroInputSchema  = `{"type":"record","name":"Input","namespace":"bench","fields":[{"name":"key","type":"string"},{"name":"message","type":"string"}]}`
	avroScoreSchema  = `{"type":"record","name":"Score","namespace":"bench","fields":[{"name":"key","type":"string"},{"name":"score","type":"long"}]}`
	avroOutputSchema = `{"type":"record","name":"Input","namespace":"bench","fields":[{"name":"key","type":"string"},{"name":"message","type":"string"},{"name":"score","type":"long"}]}`
)

type avroInput struct {
	Key     string `avro:"key"`
	Message string `avro:"message"`
}

type avroScore struct {
	Key   string `avro:"key"`
	Score int64  `avro:"score"`
}

type avroOutput struct {
	Key     string `avro:"key"`
	Message string `avro:"message"`
	Score   int64  `avro:"score"`
}

// avroRecords writes inputs and scores in Avro with the Confluent wire header of their schemas'
// IDs in the registry, and reads outputs by their layout (the input's fields, then the score).
type avroRecords struct {
	inputID, scoreID      int
	in, scores, out       avro.Schema
	inHeader, scoreHeader []byte
}

// newRegistryRecords registers the input and score schemas of format under the system's
// topics' subjects and returns the records of that format.
func newRegistryRecords(ctx context.Context, format, registry string, t topics) (recordFormat, error) {
	schemas := map[string]struct {
		typ          sr.SchemaType
		input, score string
	}{
		"avro":        {sr.TypeAvro, avroInputSchema, avroScoreSchema},
		"protobuf":    {sr.TypeProtobuf, protoInputSchema, protoScoreSchema},
		"json-schema": {sr.TypeJSON, jsonInputSchema, jsonScoreSchema},
	}
	f, ok := schemas[format]
	if !ok {
		return nil, fmt.Errorf("no records of format %q", format)
	}
	cl, err := sr.NewClient(sr.URLs(registry))
	if err != nil {
		return nil, err
	}
	ids := make([]int, 2)
	for i, s := range []struct{ subject, text string }{{t.input + "-value", f.input}, {t.scores + "-value", f.score}} {
		if ids[i], err = cl.RegisterSchema(ctx, s.subject, sr.Schema{Schema: s.text, Type: f.typ}, -1, -1); err != nil {
			return nil, fmt.Errorf("register %s: %w", s.subject, err)
		}
	}
	switch format {
	case "protobuf":
		return newProtoRecords(ids[0], ids[1]), nil
	case "json-schema":
		return newJSONSchemaRecords(ids[0], ids[1]), nil
	}
	return parseAvroRecords(ids[0], ids[1])
}

// parseAvroRecords returns the Avro records of the input and score schemas with IDs inputID
// and scoreID.
func parseAvroRecords(inputID, scoreID int) (*avroRecords, error) {
	a := &avroRecords{inputID: inputID, scoreID: scoreID}
	var err error
	for _, s := range []struct {
		text   string
		schema *avro.Schema
	}{{avroInputSchema, &a.in}, {avroScoreSchema, &a.scores}, {avroOutputSchema, &a.out}} {
		if *s.schema, err = avro.ParseWithCache(s.text, "", &avro.SchemaCache{}); err != nil {
			return nil, err
		}
	}
	var h sr.ConfluentHeader
	a.inHeader, _ = h.AppendEncode(nil, inputID, nil)
	a.scoreHeader, _ = h.AppendEncode(nil, scoreID, nil)
	return a, nil
}

func (a *avroRecords) input(key, message string) []byte {
	b, _ := avro.Marshal(a.in, avroInput{Key: key, Message: message}) // the struct always fits the schema
	return append(append([]byte{}, a.inHeader...), b...)
}

func (a *avroRecords) score(key string, s int64) []byte {
	b, _ := avro.Marshal(a.scores, avroScore{Key: key, Score: s})
	return append(append([]byte{}, a.scoreHeader...), b...)
}

func (a *avroRecords) output(value []byte) (codecs.Output, error) {
	var h sr.ConfluentHeader
	_, body, err := h.DecodeID(value)
	if err != nil {
		return codecs.Output{}, err
	}
	var o avroOutput
	if err := avro.Unmarshal(a.out, body, &o); err != nil {
		return codecs.Output{}, err
	}
	return codecs.Output{Key: o.Key, Message: o.Message, Score: o.Score}, nil
}

// The workload's records in Protocol Buffers: the output is the input message with the score
// as field 3, as enricher's Protobuf format numbers it.
const (
	protoInputSchema = `syntax = "proto3";
package bench;
message Input {
  string key = 1;
  string message = 2;
}
`
	protoScoreSchema = `syntax = "proto3";
package bench;
message Score {
  string key = 1;
  int64 score = 2;
}
`
)

// protoRecords writes inputs and scores with protowire (the bench's writer; enricher reads them
// with dynamicpb) and the Confluent header with message index 0.
type protoRecords struct {
	inHeader, scoreHeader []byte
}

func newProtoRecords(inputID, scoreID int) *protoRecords {
	var h sr.ConfluentHeader
	in, _ := h.AppendEncode(nil, inputID, []int{0})
	score, _ := h.AppendEncode(nil, scoreID, []int{0})
	return &protoRecords{inHeader: in, scoreHeader: score}
}

func (p *protoRecords) input(key, message string) []byte {
	b := append([]byte{}, p.inHeader...)
	b = protowire.AppendString(protowire.AppendTag(b, 1, protowire.BytesType), key)
	return protowire.AppendString(protowire.AppendTag(b, 2, protowire.BytesType), message)
}

func (p *protoRecords) score(key string, s int64) []byte {
	b := append([]byte{}, p.scoreHeader...)
	b = protowire.AppendString(protowire.AppendTag(b, 1, protowire.BytesType), key)
	return protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), uint64(s))
}

func (p *protoRecords) output(value []byte) (codecs.Output, error) {
	var h sr.ConfluentHeader
	_, rest, err := h.DecodeID(value)
	if err != nil {
		return codecs.Output{}, err
	}
	_, b, err := h.DecodeIndex(rest, 1)
	if err != nil {
		return codecs.Output{}, err
	}
	var o codecs.Output
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return codecs.Output{}, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			o.Key, n = protowire.ConsumeString(b)
		case num == 2 && typ == protowire.BytesType:
			o.Message, n = protowire.ConsumeString(b)
		case num == 3 && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			o.Score = int64(v)
		default:
			return codecs.Output{}, fmt.Errorf("output field %d of wire type %d: not the workload's", num, typ)
		}
		if n < 0 {
			return codecs.Output{}, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return o, nil
}

// The workload's records under JSON Schemas: the JSON records with the Confluent header.
const (
	jsonInputSchema = `{"type":"object","properties":{"key":{"type":"string"},"message":{"type":"string"}},"required":["key","message"]}`
	jsonScoreSchema = `{"type":"object","properties":{"key":{"type":"string"},"score":{"type":"integer"}},"required":["key","score"]}`
)

type jsonSchemaRecords struct {
	inHeader, scoreHeader []byte
}

func newJSONSchemaRecords(inputID, scoreID int) *jsonSchemaRecords {
	var h sr.ConfluentHeader
	in, _ := h.AppendEncode(nil, inputID, nil)
	score, _ := h.AppendEncode(nil, scoreID, nil)
	return &jsonSchemaRecords{inHeader: in, scoreHeader: score}
}

func (j *jsonSchemaRecords) input(key, message string) []byte {
	return append(append([]byte{}, j.inHeader...), jsonRecords{}.input(key, message)...)
}

func (j *jsonSchemaRecords) score(key string, s int64) []byte {
	return append(append([]byte{}, j.scoreHeader...), jsonRecords{}.score(key, s)...)
}

func (j *jsonSchemaRecords) output(value []byte) (codecs.Output, error) {
	var h sr.ConfluentHeader
	_, body, err := h.DecodeID(value)
	if err != nil {
		return codecs.Output{}, err
	}
	return jsonRecords{}.output(body)
}

// registry is a schema registry the benchmark started (scripts/registry.sh) for the systems
// that read a registry format.
type registry struct {
	url, dir string
}

// startRegistry starts Apicurio Registry in dir.
func startRegistry(ctx context.Context, dir string) (*registry, error) {
	progress("starting a schema registry (scripts/registry.sh; the first start downloads it)")
	out, err := exec.CommandContext(ctx, "bash", filepath.Join("scripts", "registry.sh"), "start", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("scripts/registry.sh start: %w\n%s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("scripts/registry.sh start: %w", err)
	}
	return &registry{url: strings.TrimSpace(string(out)), dir: dir}, nil
}

func (r *registry) stop() {
	_ = exec.Command("bash", filepath.Join("scripts", "registry.sh"), "stop", r.dir).Run()
}
