package codecs

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// AvroConfig configures an Avro format.
type AvroConfig struct {
	// Registry is where the schemas are.
	Registry Registry
	// OutputSubject is the subject output schemas are registered under: with the
	// TopicNameStrategy that Confluent's serializers use by default, "<output topic>-value".
	// Required.
	OutputSubject string
	// ScoreField is the field of a score record that holds the score, an int or a long; empty
	// is "score".
	ScoreField string
	// OutputScoreField is the field an output adds to its input's record: a long, default -1;
	// empty is "score".
	OutputScoreField string
	// Limits bound the values read.
	Limits
}

// Avro is the Format of records written in Apache Avro with the Confluent wire format (a zero
// byte, the 4-byte schema ID, then the Avro binary encoding), as Confluent's and Apicurio's
// serializers write them. An input of any record schema becomes an output of the same record
// with one more field, OutputScoreField (long, default -1), written with the input's schema
// plus that field, registered under OutputSubject: a new version of the input schema makes a
// new version of the output schema. A score record is any record with ScoreField.
//
// Schemas are fetched by ID once and cached, as are the output schemas registered for them. A
// schema's registry references define the named types it uses, and the output schema carries
// them too. A value not in the wire format, with an ID the registry does not know, or that its schema
// cannot read is bad input (ReasonNotWireFormat, ReasonUnknownSchema, ReasonSchemaMismatch); a
// registry that cannot be reached is a failure, never bad input. Build one with NewAvro.
type Avro struct {
	cfg AvroConfig
	reg *registryClient
	// api reads values with their allocations bounded by the value size limit: a crafted
	// block count must not make a reader allocate gigabytes.
	api avro.API
	// bound is the value size limit: no string, bytes or array in a value is larger.
	bound int
	// readers holds *avro.Reader for skimming inputs, one per concurrent call.
	readers sync.Pool

	inputs schemaCache[int, *avroInput]  // by input schema ID
	scores schemaCache[int, avro.Schema] // score schemas by ID
}

// avroInput is an input schema and the output schema made from it.
type avroInput struct {
	in, out avro.Schema
	outID   int
}

// NewAvro returns an Avro format; it does not reach the registry until the first record.
func NewAvro(cfg AvroConfig) (*Avro, error) {
	reg, err := newRegistryFormat("avro", cfg.Registry, cfg.OutputSubject, &cfg.ScoreField, &cfg.OutputScoreField)
	if err != nil {
		return nil, err
	}
	bound := cfg.MaxValueBytes
	if bound <= 0 {
		bound = 1 << 20
	}
	api := avro.Config{MaxByteSliceSize: bound, MaxSliceAllocSize: bound}.Freeze()
	a := &Avro{cfg: cfg, reg: reg, api: api, bound: bound}
	a.readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(api)) }
	return a, nil
}

// Score reads ScoreField of a score record.
func (a *Avro) Score(_ string, value []byte) (int64, error) {
	id, payload, err := a.header(value)
	if err != nil {
		return 0, err
	}
	schema, err := a.scoreSchema(id)
	if err != nil {
		return 0, err
	}
	var rec map[string]any
	if err := a.api.Unmarshal(schema, payload, &rec); err != nil {
		return 0, Reject(ReasonSchemaMismatch, "schema %d cannot read the score: %v", id, err)
	}
	v, ok := rec[a.cfg.ScoreField]
	if !ok || v == nil {
		return 0, Reject(ReasonMissingField, "score record of schema %d has no %s", id, a.cfg.ScoreField)
	}
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int32:
		return int64(n), nil
	case int64:
		return n, nil
	}
	return 0, Reject(ReasonWrongType, "%s is a %T, not an int or a long", a.cfg.ScoreField, v)
}

// Enrich appends to dst the output record of an input: its fields and OutputScoreField.
func (a *Avro) Enrich(dst []byte, _ string, value []byte, score int64) ([]byte, error) {
	id, payload, err := a.header(value)
	if err != nil {
		return dst, err
	}
	in, err := a.input(id)
	if err != nil {
		return dst, err
	}
	// The payload must be exactly one record of its schema. Then, as Avro writes a record as
	// its fields one after the other, the output record is the input's bytes followed by the
	// score, a long: zig-zag varint, as encoding/binary writes it.
	// The record is skimmed with every check a full read makes (hamba's own skipping lets
	// through what a reader then fails on: a negative string length, found by FuzzAvroEnrich).
	r := a.readers.Get().(*avro.Reader)
	defer func() { r.Reset(nil); a.readers.Put(r) }() // the pool keeps no payload alive
	r.Reset(payload)
	r.Error = nil
	skimAvro(r, in.in, a.bound)
	if r.Error != nil {
		return dst, Reject(ReasonSchemaMismatch, "schema %d cannot read the input: %v", id, r.Error)
	}
	if r.Peek(); r.Error == nil {
		return dst, Reject(ReasonSchemaMismatch, "bytes left after the record of schema %d", id)
	}
	var h sr.ConfluentHeader
	out, err := h.AppendEncode(dst, in.outID, nil)
	if err != nil {
		return dst, err
	}
	out = append(out, payload...)
	return binary.AppendVarint(out, score), nil
}

// header checks the value's size and wire-format header and returns its schema ID and payload.
func (a *Avro) header(value []byte) (int, []byte, error) {
	if err := checkSize(value, a.cfg.MaxValueBytes); err != nil {
		return 0, nil, err
	}
	var h sr.ConfluentHeader
	id, payload, err := h.DecodeID(value)
	if err != nil {
		return 0, nil, Reject(ReasonNotWireFormat, "%v", err)
	}
	return id, payload, nil
}

// scoreSchema returns the parsed schema of a score record.
func (a *Avro) scoreSchema(id int) (avro.Schema, error) {
	return a.scores.get(id, func() (avro.Schema, error) {
		text, err := a.reg.fetch(context.Background(), id, sr.TypeAvro)
		if err != nil {
			return nil, err
		}
		parsed, err := parseAvroRefs(text)
		if err != nil {
			return nil, Reject(ReasonSchemaMismatch, "schema %d: %v", id, err)
		}
		return parsed, nil
	})
}

// input returns an input schema and its output schema, registering the output schema the
// first time.
func (a *Avro) input(id int) (*avroInput, error) {
	return a.inputs.get(id, func() (*avroInput, error) {
		text, err := a.reg.fetch(context.Background(), id, sr.TypeAvro)
		if err != nil {
			return nil, err
		}
		return a.outputSchema(id, text)
	})
}

// outputSchema makes the output schema of input schema id: its record with OutputScoreField
// appended, registered under OutputSubject. The input's JSON is edited rather than rebuilt
// from the parsed schema, so its docs, aliases, defaults and logical types stay as written.
func (a *Avro) outputSchema(id int, st schemaText) (*avroInput, error) {
	in, err := parseAvroRefs(st)
	if err != nil {
		return nil, Reject(ReasonSchemaMismatch, "schema %d: %v", id, err)
	}
	rec, ok := in.(*avro.RecordSchema)
	if !ok {
		return nil, Reject(ReasonSchemaMismatch, "schema %d is a %s, not a record", id, in.Type())
	}
	for _, f := range rec.Fields() {
		if f.Name() == a.cfg.OutputScoreField {
			return nil, Reject(ReasonSchemaMismatch, "schema %d already has a field %s", id, a.cfg.OutputScoreField)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(st.text), &doc); err != nil {
		return nil, Reject(ReasonSchemaMismatch, "schema %d: %v", id, err)
	}
	fields, _ := doc["fields"].([]any)
	doc["fields"] = append(fields, map[string]any{"name": a.cfg.OutputScoreField, "type": "long", "default": NoScore,
		"doc": "the key's score when the input was enriched; -1 while the key had none"})
	outText, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	out, err := parseAvroRefs(schemaText{text: string(outText), refs: st.refs})
	if err != nil {
		return nil, fmt.Errorf("output schema of %d: %w", id, err)
	}
	// The output names the types the input referenced, so it carries the same references.
	outID, err := a.reg.registerOutput(context.Background(), a.cfg.OutputSubject,
		sr.Schema{Schema: string(outText), Type: sr.TypeAvro, References: st.references}, id)
	if err != nil {
		return nil, err
	}
	return &avroInput{in: in, out: out, outID: outID}, nil
}

// parseAvro parses a schema that references no other.
func parseAvro(text string) (avro.Schema, error) { return parseAvroRefs(schemaText{text: text}) }

// parseAvroRefs parses a schema after the schemas it references, which define the named types
// it uses, on a cache of its own: versions of one record share its name, and avro's shared cache
// would resolve one to the other.
func parseAvroRefs(st schemaText) (avro.Schema, error) {
	cache := &avro.SchemaCache{}
	for _, r := range st.refs {
		if _, err := avro.ParseWithCache(r.text, "", cache); err != nil {
			return nil, fmt.Errorf("reference %s: %w", r.name, err)
		}
	}
	return avro.ParseWithCache(st.text, "", cache)
}

// RegistryState reports the outcome of the format's registry requests.
func (a *Avro) RegistryState() RegistryState { return a.reg.registryState() }
