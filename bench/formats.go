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

// newAvroRecords registers the input and score schemas under the system's topics' subjects.
func newAvroRecords(ctx context.Context, registry string, t topics) (*avroRecords, error) {
	cl, err := sr.NewClient(sr.URLs(registry))
	if err != nil {
		return nil, err
	}
	ids := make([]int, 2)
	for i, s := range []struct{ subject, text string }{{t.input + "-value", avroInputSchema}, {t.scores + "-value", avroScoreSchema}} {
		if ids[i], err = cl.RegisterSchema(ctx, s.subject, sr.Schema{Schema: s.text, Type: sr.TypeAvro}, -1, -1); err != nil {
			return nil, fmt.Errorf("register %s: %w", s.subject, err)
		}
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
