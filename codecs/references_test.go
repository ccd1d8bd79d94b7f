package codecs

import (
	"encoding/json"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

// outputOf returns an output's registered schema, with its references, and its payload after
// the header (message indexes included for Protobuf).
func outputOf(t *testing.T, reg *fakeRegistry, out []byte) (schemaText, []byte) {
	t.Helper()
	var h sr.ConfluentHeader
	id, body, err := h.DecodeID(out)
	require.NoError(t, err)
	reg.mu.Lock()
	defer reg.mu.Unlock()
	st := schemaText{text: reg.schemas[id], references: reg.refs[id]}
	for _, r := range st.references {
		st.refs = append(st.refs, namedSchema{name: r.Name, text: reg.schemas[reg.subject[r.Subject][r.Version]]})
	}
	return st, body
}

// A schema that names a type of another subject (an Avro named type, a .proto import, a JSON
// Schema $ref) is read with that subject's schema, and its output schema carries the same
// references.
func TestRegistryReferences(t *testing.T) {
	money := sr.SchemaReference{Subject: "money-value", Version: 1}
	t.Run("avro", func(t *testing.T) {
		reg, url := newFakeRegistry(t)
		const moneyText = `{"type":"record","name":"Money","namespace":"shop","fields":[{"name":"units","type":"long"},{"name":"currency","type":"string"}]}`
		const orderText = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"total","type":"shop.Money"}]}`
		reg.addVersion("money-value", moneyText, sr.TypeAvro)
		ref := money
		ref.Name = "shop.Money"
		in := reg.addVersion("orders-value", orderText, sr.TypeAvro, ref)
		schema, err := parseAvroRefs(schemaText{text: orderText, refs: []namedSchema{{"shop.Money", moneyText}}})
		require.NoError(t, err)
		body, err := avro.Marshal(schema, map[string]any{"id": "o1", "total": map[string]any{"units": int64(12), "currency": "NOK"}})
		require.NoError(t, err)
		var h sr.ConfluentHeader
		value, _ := h.AppendEncode(nil, in, nil)
		out, err := newTestAvro(t, url).Enrich(nil, "c1", append(value, body...), 7)
		require.NoError(t, err)
		st, payload := outputOf(t, reg, out)
		assert.Equal(t, []sr.SchemaReference{ref}, st.references, "the output schema carries the input's references")
		outSchema, err := parseAvroRefs(st)
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, avro.Unmarshal(outSchema, payload, &got))
		assert.Equal(t, map[string]any{"id": "o1", "total": map[string]any{"units": int64(12), "currency": "NOK"}, "tier": int64(7)}, got)
	})
	t.Run("protobuf", func(t *testing.T) {
		reg, url := newFakeRegistry(t)
		const moneyText = `syntax = "proto3"; package shop; message Money { int64 units = 1; string currency = 2; }`
		const orderText = `syntax = "proto3"; package shop; import "shop/money.proto"; message Order { string id = 1; Money total = 2; }`
		reg.addVersion("money-value", moneyText, sr.TypeProtobuf)
		ref := money
		ref.Name = "shop/money.proto"
		in := reg.addVersion("orders-value", orderText, sr.TypeProtobuf, ref)
		file, err := compileProtoRefs(in, schemaText{text: orderText, refs: []namedSchema{{"shop/money.proto", moneyText}}})
		require.NoError(t, err)
		order := dynamicpb.NewMessage(file.Messages().Get(0))
		require.NoError(t, protojson.Unmarshal([]byte(`{"id":"o1","total":{"units":"12","currency":"NOK"}}`), order))
		out, err := newTestProtobuf(t, url).Enrich(nil, "c1", protoWire(t, in, []int{0}, order), 7)
		require.NoError(t, err)
		st, payload := outputOf(t, reg, out)
		assert.Equal(t, []sr.SchemaReference{ref}, st.references, "the output schema carries the input's references")
		outFile, err := compileProtoRefs(0, st)
		require.NoError(t, err)
		var h sr.ConfluentHeader
		_, body, err := h.DecodeIndex(payload, maxIndexes)
		require.NoError(t, err)
		got := dynamicpb.NewMessage(outFile.Messages().Get(0))
		require.NoError(t, proto.Unmarshal(body, got))
		text, err := protojson.Marshal(got)
		require.NoError(t, err)
		assert.JSONEq(t, `{"id":"o1","total":{"units":"12","currency":"NOK"},"tier":"7"}`, string(text))
	})
	t.Run("json-schema", func(t *testing.T) {
		reg, url := newFakeRegistry(t)
		const moneyText = `{"type":"object","properties":{"units":{"type":"integer"},"currency":{"type":"string"}},"required":["units"]}`
		const orderText = `{"type":"object","properties":{"id":{"type":"string"},"total":{"$ref":"money.json"}}}`
		reg.addVersion("money-value", moneyText, sr.TypeJSON)
		ref := money
		ref.Name = "money.json"
		in := reg.addVersion("orders-value", orderText, sr.TypeJSON, ref)
		j := newTestJSONSchema(t, url)
		out, err := j.Enrich(nil, "c1", jsonWire(t, in, `{"id":"o1","total":{"units":12,"currency":"NOK"}}`), 7)
		require.NoError(t, err)
		st, payload := outputOf(t, reg, out)
		assert.Equal(t, []sr.SchemaReference{ref}, st.references, "the output schema carries the input's references")
		outSchema, err := compileJSONSchemaRefs(0, st)
		require.NoError(t, err)
		assert.NoError(t, validate(outSchema, 0, payload))
		var got map[string]any
		require.NoError(t, json.Unmarshal(payload, &got))
		assert.Equal(t, float64(7), got["tier"])
		_, err = j.Enrich(nil, "c1", jsonWire(t, in, `{"id":"o1","total":{"units":"twelve"}}`), 7)
		assert.Equal(t, ReasonSchemaMismatch, ReasonOf(err), "the referenced schema is enforced: %v", err)
	})
}

// References the registry cannot serve, or that lead nowhere, make the schema's records bad
// input, never a failure.
func TestRegistryReferenceProblems(t *testing.T) {
	reg, url := newFakeRegistry(t)
	const orderText = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"total","type":"shop.Money"}]}`
	missing := reg.addVersion("a-value", orderText, sr.TypeAvro, sr.SchemaReference{Name: "shop.Money", Subject: "nowhere", Version: 1})
	reg.addVersion("proto-value", `syntax = "proto3"; message Money { int64 units = 1; }`, sr.TypeProtobuf)
	wrongType := reg.addVersion("b-value", orderText+" ", sr.TypeAvro, sr.SchemaReference{Name: "shop.Money", Subject: "proto-value", Version: 1})
	// a schema whose references go round in a circle
	reg.addVersion("c-value", `{"type":"record","name":"C","fields":[]}`, sr.TypeAvro, sr.SchemaReference{Name: "D", Subject: "d-value", Version: 1})
	reg.addVersion("d-value", `{"type":"record","name":"D","fields":[]}`, sr.TypeAvro, sr.SchemaReference{Name: "C", Subject: "c-value", Version: 1})
	circle := reg.addVersion("e-value", orderText+"  ", sr.TypeAvro, sr.SchemaReference{Name: "C", Subject: "c-value", Version: 1})
	a := newTestAvro(t, url)
	assertRejects(t, a, []rejectCase{
		{"a reference the registry does not have", false, []byte{0, 0, 0, 0, byte(missing), 0}, ReasonSchemaMismatch},
		{"a reference of another type", false, []byte{0, 0, 0, 0, byte(wrongType), 0}, ReasonSchemaMismatch},
		{"references in a circle, and no Money", false, []byte{0, 0, 0, 0, byte(circle), 0}, ReasonSchemaMismatch},
	})
}
