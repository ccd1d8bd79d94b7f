package codecs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/franz-go/pkg/sr"
)

// JSONSchemaConfig configures a JSON Schema format.
type JSONSchemaConfig struct {
	// Registry is where the schemas are.
	Registry Registry
	// OutputSubject is the subject output schemas are registered under: with the
	// TopicNameStrategy that Confluent's serializers use by default, "<output topic>-value".
	// Required.
	OutputSubject string
	// ScoreField is the property of a score record that holds the score, an integer; empty is
	// "score".
	ScoreField string
	// OutputScoreField is the property an output adds to its input's object: an integer,
	// default -1; empty is "score".
	OutputScoreField string
	// Limits bound the values read.
	Limits
}

// JSONSchema is the Format of JSON records validated by a JSON Schema, in the Confluent wire
// format (a zero byte, the 4-byte schema ID, then the JSON text), as Confluent's and
// Apicurio's JSON Schema serializers write them. An input, any JSON object its schema accepts,
// becomes the same object, every property kept byte for byte, with OutputScoreField added; its
// schema is the input's with that property added (an integer, default -1), registered under
// OutputSubject, so a new version of the input schema makes a new version of the output schema.
// A score record is any object its schema accepts with an integer ScoreField.
//
// Schemas are fetched by ID once and cached, as are the output schemas registered for them. A
// $ref to another document resolves to the schema's registry reference of that name (the output
// schema carries the input's references); no other document is ever loaded. A schema whose
// root is neither an object schema with properties nor a local $ref to one, or whose $ref names
// a document it does not reference, cannot be extended and its records are bad input
// (ReasonSchemaMismatch), as are values not in the wire format (ReasonNotWireFormat), with an
// ID the registry does not know (ReasonUnknownSchema), or that their schema rejects
// (ReasonSchemaMismatch). A registry that cannot be reached is a failure, never bad input.
// Build one with NewJSONSchema.
type JSONSchema struct {
	cfg    JSONSchemaConfig
	reg    *registryClient
	splice JSONMerge // the output's splice and the score's read

	inputs schemaCache[int, *jsonSchemaInput] // by input schema ID
	scores schemaCache[int, *jsonschema.Schema]
}

// jsonSchemaInput is a compiled input schema and the ID of the output schema made from it.
type jsonSchemaInput struct {
	in    *jsonschema.Schema
	outID int
}

// NewJSONSchema returns a JSON Schema format; it does not reach the registry until the first
// record.
func NewJSONSchema(cfg JSONSchemaConfig) (*JSONSchema, error) {
	reg, err := newRegistryFormat("json schema", cfg.Registry, cfg.OutputSubject, &cfg.ScoreField, &cfg.OutputScoreField)
	if err != nil {
		return nil, err
	}
	return &JSONSchema{cfg: cfg, reg: reg, splice: JSONMerge{Limits: cfg.Limits}}, nil
}

// Score reads ScoreField of a score record its schema accepts.
func (j *JSONSchema) Score(_ string, value []byte) (int64, error) {
	id, payload, ms, err := j.read(value)
	if err != nil {
		return 0, err
	}
	schema, err := j.scores.get(id, func() (*jsonschema.Schema, error) {
		text, err := j.reg.fetch(context.Background(), id, sr.TypeJSON)
		if err != nil {
			return nil, err
		}
		return compileJSONSchemaRefs(id, text)
	})
	if err != nil {
		return 0, err
	}
	if err := validate(schema, id, payload); err != nil {
		return 0, err
	}
	return JSONMerge{ScoreField: j.cfg.ScoreField}.scoreIn(payload, ms)
}

// Enrich appends to dst the output record of an input: its object with OutputScoreField set.
func (j *JSONSchema) Enrich(dst []byte, _ string, value []byte, score int64) ([]byte, error) {
	id, payload, ms, err := j.read(value)
	if err != nil {
		return dst, err
	}
	in, err := j.inputs.get(id, func() (*jsonSchemaInput, error) {
		text, err := j.reg.fetch(context.Background(), id, sr.TypeJSON)
		if err != nil {
			return nil, err
		}
		return j.outputSchema(id, text)
	})
	if err != nil {
		return dst, err
	}
	if err := validate(in.in, id, payload); err != nil {
		return dst, err
	}
	var h sr.ConfluentHeader
	out, err := h.AppendEncode(dst, in.outID, nil)
	if err != nil {
		return dst, err
	}
	return JSONMerge{ScoreField: j.cfg.OutputScoreField}.splice(out, payload, ms, score), nil
}

// read checks a value's size and wire-format header, and that its payload is a JSON object,
// and returns its schema ID, payload and the payload's top-level members.
func (j *JSONSchema) read(value []byte) (int, []byte, []member, error) {
	if err := checkSize(value, j.cfg.MaxValueBytes); err != nil {
		return 0, nil, nil, err
	}
	var h sr.ConfluentHeader
	id, payload, err := h.DecodeID(value)
	if err != nil {
		return 0, nil, nil, Reject(ReasonNotWireFormat, "%v", err)
	}
	ms, err := j.splice.members(payload)
	if err != nil {
		return 0, nil, nil, err
	}
	return id, payload, ms, nil
}

// validate checks payload against schema id.
func validate(schema *jsonschema.Schema, id int, payload []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return Reject(ReasonInvalidJSON, "%v", err)
	}
	if err := schema.Validate(doc); err != nil {
		return Reject(ReasonSchemaMismatch, "schema %d rejects the value: %s", id, oneLine(err))
	}
	return nil
}

// oneLine folds a validation error's lines, one per failed keyword, into one.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// outputSchema makes the output schema of input schema id: the input's document with
// OutputScoreField added to the properties of its root object (or of the definition a root
// $ref points to), registered under OutputSubject. The document is edited, not rebuilt, so
// everything else in it stays as written.
func (j *JSONSchema) outputSchema(id int, st schemaText) (*jsonSchemaInput, error) {
	in, err := compileJSONSchemaRefs(id, st)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(st.text), &doc); err != nil {
		return nil, Reject(ReasonSchemaMismatch, "schema %d is not a JSON object: %v", id, err)
	}
	obj, err := rootObject(doc)
	if err != nil {
		return nil, Reject(ReasonSchemaMismatch, "schema %d: %v", id, err)
	}
	props, _ := obj["properties"].(map[string]any)
	if _, taken := props[j.cfg.OutputScoreField]; taken {
		return nil, Reject(ReasonSchemaMismatch, "schema %d already has a property %s", id, j.cfg.OutputScoreField)
	}
	props[j.cfg.OutputScoreField] = map[string]any{"type": "integer", "default": NoScore,
		"description": "the key's score when the input was enriched; -1 while the key had none"}
	outText, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if _, err := compileJSONSchemaRefs(id, schemaText{text: string(outText), refs: st.refs}); err != nil {
		return nil, fmt.Errorf("output schema of %d: %w", id, err)
	}
	// The output refers to what the input referred to, so it carries the same references.
	outID, err := j.reg.registerOutput(context.Background(), j.cfg.OutputSubject,
		sr.Schema{Schema: string(outText), Type: sr.TypeJSON, References: st.references}, id)
	if err != nil {
		return nil, err
	}
	return &jsonSchemaInput{in: in, outID: outID}, nil
}

// rootObject returns the object schema an output's property goes into: the root, or the
// definition a root "$ref" of the form "#/definitions/X" or "#/$defs/X" names, as generators
// of schemas from classes write them. It must declare type "object" and properties.
func rootObject(doc map[string]any) (map[string]any, error) {
	obj := doc
	if ref, ok := doc["$ref"].(string); ok {
		var target any
		for _, defs := range []string{"definitions", "$defs"} {
			if name, ok := strings.CutPrefix(ref, "#/"+defs+"/"); ok && !strings.Contains(name, "/") {
				all, _ := doc[defs].(map[string]any)
				target = all[name]
			}
		}
		if obj, ok = target.(map[string]any); !ok {
			return nil, fmt.Errorf("its root $ref %q names no definition of this document", ref)
		}
	}
	if typ, _ := obj["type"].(string); typ != "object" {
		return nil, errors.New(`its root is not a schema of "type": "object"`)
	}
	if _, ok := obj["properties"].(map[string]any); !ok {
		return nil, errors.New("its root object schema has no properties")
	}
	return obj, nil
}

// compileJSONSchema compiles a JSON Schema that references no other.
func compileJSONSchema(id int, text string) (*jsonschema.Schema, error) {
	return compileJSONSchemaRefs(id, schemaText{text: text})
}

// compileJSONSchemaRefs compiles a registry's JSON Schema with the schemas it references. It
// loads no other document: a schema from the registry must not make the job read files or
// URLs. Without "$schema" it is read as draft-07, the draft Confluent's serializers write.
func compileJSONSchemaRefs(id int, st schemaText) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(st.text))
	if err != nil {
		return nil, Reject(ReasonSchemaMismatch, "schema %d is not JSON: %v", id, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.UseLoader(refLoader(st.refs))
	// A base a relative $ref resolves against to a URL ending in the reference's name.
	url := fmt.Sprintf("https://registry.invalid/schemas/%d.json", id)
	if err := c.AddResource(url, doc); err != nil {
		return nil, Reject(ReasonSchemaMismatch, "schema %d: %s", id, oneLine(err))
	}
	schema, err := c.Compile(url)
	if err != nil {
		return nil, Reject(ReasonSchemaMismatch, "schema %d: %s", id, oneLine(err))
	}
	return schema, nil
}

// refLoader serves the schemas a schema references, by their reference names (Confluent's
// serializers use the name as the $ref), and refuses every other document.
type refLoader []namedSchema

func (l refLoader) Load(url string) (any, error) {
	for _, r := range l {
		if url == r.name || strings.HasSuffix(url, "/"+strings.TrimPrefix(r.name, "./")) {
			return jsonschema.UnmarshalJSON(strings.NewReader(r.text))
		}
	}
	return nil, fmt.Errorf("%s is neither the schema nor one of its references, and schemas are read from the registry alone", url)
}

// RegistryState reports the outcome of the format's registry requests.
func (j *JSONSchema) RegistryState() RegistryState { return j.reg.registryState() }
