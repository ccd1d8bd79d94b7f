package codecs

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
)

// orderJSONSchema is the order of testdata/order.avsc as a JSON Schema; the system tests read
// the same file.
var orderJSONSchema = func() string {
	b, err := os.ReadFile("testdata/order.schema.json")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// jsonWire puts the Confluent header of id in front of a JSON text.
func jsonWire(t testing.TB, id int, text string) []byte {
	t.Helper()
	var h sr.ConfluentHeader
	out, err := h.AppendEncode(nil, id, nil)
	require.NoError(t, err)
	return append(out, text...)
}

const orderJSON = `{"id":"o1", "customer":"c1","amount":12.5,"note":null,"lines":[{"sku":"a","qty":2}]}`

func newTestJSONSchema(t testing.TB, url string) *JSONSchema {
	t.Helper()
	j, err := NewJSONSchema(JSONSchemaConfig{Registry: Registry{URL: url}, OutputSubject: "out-value", OutputScoreField: "tier"})
	require.NoError(t, err)
	return j
}

// registered returns the text of schema id in reg.
func registered(reg *fakeRegistry, id int) string {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return reg.schemas[id]
}

func TestJSONSchemaEnrichKeepsEveryProperty(t *testing.T) {
	reg, url := newFakeRegistry(t)
	in := reg.addTyped(orderJSONSchema, sr.TypeJSON)
	j := newTestJSONSchema(t, url)

	for _, score := range []int64{7, NoScore} {
		out, err := j.Enrich([]byte("prefix"), "c1", jsonWire(t, in, orderJSON), score)
		require.NoError(t, err)
		require.Equal(t, "prefix", string(out[:6]), "appended to dst")
		var h sr.ConfluentHeader
		outID, body, err := h.DecodeID(out[6:])
		require.NoError(t, err)
		assert.Equal(t, `{"id":"o1","customer":"c1","amount":12.5,"note":null,"lines":[{"sku":"a","qty":2}],"tier":`+strconv.FormatInt(score, 10)+`}`, string(body),
			"every property kept byte for byte, the score added last")

		outText := registered(reg, outID)
		require.NotEmpty(t, outText, "the output schema is registered")
		outSchema, err := compileJSONSchema(outID, outText)
		require.NoError(t, err)
		require.NoError(t, validate(outSchema, outID, body), "the output schema accepts the output")
		assert.Contains(t, outText, `"description":"an order"`, "the input schema's text is kept")
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(outText), &doc))
		tier := doc["properties"].(map[string]any)["tier"].(map[string]any)
		assert.Equal(t, "integer", tier["type"])
		assert.Equal(t, float64(-1), tier["default"])
	}
	assert.Equal(t, sr.TypeJSON, reg.types[2], "the output schema is registered as a JSON Schema")
}

// A new version of the input schema makes a new version of the output schema; each input
// schema is fetched once.
func TestJSONSchemaNewInputVersion(t *testing.T) {
	reg, url := newFakeRegistry(t)
	v1 := reg.addTyped(orderJSONSchema, sr.TypeJSON)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(orderJSONSchema), &doc))
	doc["properties"].(map[string]any)["channel"] = map[string]any{"type": "string"}
	v2text, err := json.Marshal(doc)
	require.NoError(t, err)
	v2 := reg.addTyped(string(v2text), sr.TypeJSON)
	j := newTestJSONSchema(t, url)

	outIDs := map[int]bool{}
	for _, v := range []int{v1, v2, v1, v2} {
		out, err := j.Enrich(nil, "c1", jsonWire(t, v, orderJSON), 1)
		require.NoError(t, err)
		var h sr.ConfluentHeader
		id, _, err := h.DecodeID(out)
		require.NoError(t, err)
		outIDs[id] = true
	}
	assert.Len(t, outIDs, 2, "one output schema per input schema")
	reg.mu.Lock()
	defer reg.mu.Unlock()
	assert.Equal(t, 2, reg.lookups, "each input schema fetched once")
}

// A root that points at its definition, as schema generators write it, gets the property in
// that definition.
func TestJSONSchemaRootRef(t *testing.T) {
	reg, url := newFakeRegistry(t)
	schema := `{"$schema":"http://json-schema.org/draft-07/schema#","$ref":"#/definitions/Order",
		"definitions":{"Order":{"type":"object","additionalProperties":false,"properties":{"id":{"type":"string"}}}}}`
	in := reg.addTyped(schema, sr.TypeJSON)
	j := newTestJSONSchema(t, url)
	out, err := j.Enrich(nil, "k", jsonWire(t, in, `{"id":"o1"}`), 4)
	require.NoError(t, err)
	var h sr.ConfluentHeader
	outID, body, err := h.DecodeID(out)
	require.NoError(t, err)
	assert.Equal(t, `{"id":"o1","tier":4}`, string(body))
	outSchema, err := compileJSONSchema(outID, registered(reg, outID))
	require.NoError(t, err)
	assert.NoError(t, validate(outSchema, outID, body), "additionalProperties false, and the output still valid")
}

func TestJSONSchemaScore(t *testing.T) {
	reg, url := newFakeRegistry(t)
	tier := reg.addTyped(`{"type":"object","properties":{"customer":{"type":"string"},"score":{"type":"integer"}},"required":["score"]}`, sr.TypeJSON)
	j := newTestJSONSchema(t, url)
	for _, tc := range []struct {
		text string
		want int64
	}{
		{`{"customer":"c1","score":3}`, 3},
		{`{"score":1099511627776,"customer":"c1"}`, 1 << 40},
		{`{"score":-2}`, -2},
	} {
		got, err := j.Score("c1", jsonWire(t, tier, tc.text))
		require.NoError(t, err, tc.text)
		assert.Equal(t, tc.want, got, tc.text)
	}
}

// Each kind of bad input is rejected with its reason; none is a failure.
func TestJSONSchemaBadInput(t *testing.T) {
	reg, url := newFakeRegistry(t)
	in := reg.addTyped(orderJSONSchema, sr.TypeJSON)
	anyScore := reg.addTyped(`{"type":"object","properties":{"customer":{"type":"string"}}}`, sr.TypeJSON)
	hasTier := reg.addTyped(`{"type":"object","properties":{"tier":{"type":"integer"}}}`, sr.TypeJSON)
	notObject := reg.addTyped(`{"type":"string"}`, sr.TypeJSON)
	external := reg.addTyped(`{"type":"object","properties":{"a":{"$ref":"file:///etc/passwd"}}}`, sr.TypeJSON)
	badRef := reg.addTyped(`{"$ref":"#/definitions/Nope","definitions":{}}`, sr.TypeJSON)
	arraySchema := reg.addTyped(`[{"type":"object"}]`, sr.TypeJSON) // jsonschema v6.0.1 crashed compiling a non-object root
	stringSchema := reg.addTyped(`"object"`, sr.TypeJSON)
	avroSchema := reg.add(orderSchema)
	j := newTestJSONSchema(t, url)
	assertRejects(t, j, []rejectCase{
		{"empty", false, nil, ReasonEmptyValue},
		{"JSON, not the wire format", false, []byte(`{"id":"o1"}`), ReasonNotWireFormat},
		{"a header and no more", false, []byte{0, 0, 0}, ReasonNotWireFormat},
		{"an ID the registry does not know", false, jsonWire(t, 12345, orderJSON), ReasonUnknownSchema},
		{"a payload that is not JSON", false, jsonWire(t, in, `{"id":`), ReasonInvalidJSON},
		{"a payload that is not an object", false, jsonWire(t, in, `["o1"]`), ReasonInvalidJSON},
		{"a payload its schema rejects", false, jsonWire(t, in, `{"id":7,"customer":"c1","amount":1}`), ReasonSchemaMismatch},
		{"a payload without a required property", false, jsonWire(t, in, `{"id":"o1"}`), ReasonSchemaMismatch},
		{"an Avro schema's ID", false, jsonWire(t, avroSchema, orderJSON), ReasonSchemaMismatch},
		{"an input schema that is not an object", false, jsonWire(t, notObject, `{"a":1}`), ReasonSchemaMismatch},
		{"an input schema that has the output property", false, jsonWire(t, hasTier, `{"tier":1}`), ReasonSchemaMismatch},
		{"a schema that refers to a file", false, jsonWire(t, external, `{"a":1}`), ReasonSchemaMismatch},
		{"a root $ref to nothing", false, jsonWire(t, badRef, `{"a":1}`), ReasonSchemaMismatch},
		{"a schema that is an array", false, jsonWire(t, arraySchema, `{"a":1}`), ReasonSchemaMismatch},
		{"a schema that is a string", false, jsonWire(t, stringSchema, `{"a":1}`), ReasonSchemaMismatch},
		{"a score without the score property", true, jsonWire(t, anyScore, `{"customer":"c"}`), ReasonMissingField},
		{"a score of the wrong type", true, jsonWire(t, anyScore, `{"score":"7"}`), ReasonWrongType},
		{"a score its schema rejects", true, jsonWire(t, anyScore, `{"customer":7,"score":7}`), ReasonSchemaMismatch},
		{"a score not in the wire format", true, []byte("7"), ReasonNotWireFormat},
	})
}

// A registry that cannot answer is a failure, never bad input: the record is read again later.
func TestJSONSchemaRegistryDownIsNotBadInput(t *testing.T) {
	reg, url := newFakeRegistry(t)
	in := reg.addTyped(orderJSONSchema, sr.TypeJSON)
	j := newTestJSONSchema(t, url)
	reg.mu.Lock()
	reg.down = true
	reg.mu.Unlock()
	_, err := j.Enrich(nil, "c1", jsonWire(t, in, orderJSON), 1)
	require.Error(t, err)
	assert.Empty(t, ReasonOf(err), "not bad input: %v", err)

	reg.mu.Lock()
	reg.down = false
	reg.mu.Unlock()
	_, err = j.Enrich(nil, "c1", jsonWire(t, in, orderJSON), 1)
	assert.NoError(t, err, "the same record once the registry is back")
}

func FuzzJSONSchemaEnrich(f *testing.F) {
	t := &testing.T{}
	reg, url := newFakeRegistry(t)
	in := reg.addTyped(orderJSONSchema, sr.TypeJSON)
	j := newTestJSONSchema(t, url)
	valid := jsonWire(t, in, orderJSON)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(jsonWire(t, in, `{"id":"o1","customer":"c1","amount":1,"tier":5}`))
	f.Add([]byte(`{"id":"o1"}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		out, err := j.Enrich(nil, "k", value, 5)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("a failure, not bad input, with the registry up: %v", err)
			}
			return
		}
		var h sr.ConfluentHeader
		id, body, err := h.DecodeID(out)
		if err != nil {
			t.Fatal(err)
		}
		outSchema, err := compileJSONSchema(id, registered(reg, id))
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(outSchema, id, body); err != nil {
			t.Fatalf("output %q of input %q: its schema rejects it: %v", body, value, err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(body, &got); err != nil || string(got["tier"]) != "5" {
			t.Fatalf("output %q of input %q: not the input's object with the score (%v)", body, value, err)
		}
	})
}

// The order of BenchmarkAvroEnrich as JSON under a JSON Schema, for comparison in one run.
func BenchmarkJSONSchemaEnrich(b *testing.B) {
	reg, url := newFakeRegistry(&testing.T{})
	in := reg.addTyped(orderJSONSchema, sr.TypeJSON)
	j := newTestJSONSchema(b, url)
	value := jsonWire(b, in, `{"id":"o1","customer":"c1","amount":12.5,"note":"gift","lines":[{"sku":"a","qty":2}]}`)
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = j.Enrich(dst[:0], "c1", value, 7); err != nil {
			b.Fatal(err)
		}
	}
}
