package codecs

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// orderProto is an order with a nested message, a repeated field, an optional field, a
// well-known type and a reserved number; the system tests read the same file.
var orderProto = func() string {
	b, err := os.ReadFile("testdata/order.proto")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// protoMessage returns the message type at index of a .proto text.
func protoMessage(t testing.TB, text string, index ...int) protoreflect.MessageDescriptor {
	t.Helper()
	file, err := compileProto(0, text)
	require.NoError(t, err)
	msgs := file.Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range index {
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	return md
}

// protoOrder is an order of the type md, filled from its protojson text.
func protoOrder(t testing.TB, md protoreflect.MessageDescriptor, text string) *dynamicpb.Message {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	require.NoError(t, protojson.Unmarshal([]byte(text), m))
	return m
}

// protoWire is m in the Confluent wire format with schema id and message indexes index.
func protoWire(t testing.TB, id int, index []int, m proto.Message) []byte {
	t.Helper()
	body, err := proto.Marshal(m)
	require.NoError(t, err)
	var h sr.ConfluentHeader
	out, err := h.AppendEncode(nil, id, index)
	require.NoError(t, err)
	return append(out, body...)
}

const orderProtoJSON = `{"id":"o1","customer":"c1","amount":12.5,"note":"gift","lines":[{"sku":"a","qty":2}],"placed":"2026-12-06T10:00:00Z"}`

func newTestProtobuf(t testing.TB, url string) *Protobuf {
	t.Helper()
	p, err := NewProtobuf(ProtobufConfig{Registry: Registry{URL: url}, OutputSubject: "out-value", OutputScoreField: "tier"})
	require.NoError(t, err)
	return p
}

// readOutput decodes an output: its registered schema, the message at its indexes, the message.
func readOutput(t testing.TB, reg *fakeRegistry, out []byte) (string, *dynamicpb.Message) {
	t.Helper()
	var h sr.ConfluentHeader
	id, rest, err := h.DecodeID(out)
	require.NoError(t, err)
	index, body, err := h.DecodeIndex(rest, maxIndexes)
	require.NoError(t, err)
	text := registered(reg, id)
	require.NotEmpty(t, text, "the output schema is registered")
	m := dynamicpb.NewMessage(protoMessage(t, text, index...))
	require.NoError(t, proto.Unmarshal(body, m))
	return text, m
}

func TestProtobufEnrichKeepsEveryField(t *testing.T) {
	reg, url := newFakeRegistry(t)
	in := reg.addTyped(orderProto, sr.TypeProtobuf)
	p := newTestProtobuf(t, url)
	order := protoOrder(t, protoMessage(t, orderProto, 0), orderProtoJSON)

	for _, score := range []int64{7, NoScore, 0} {
		out, err := p.Enrich([]byte("prefix"), "c1", protoWire(t, in, []int{0}, order), score)
		require.NoError(t, err)
		require.Equal(t, "prefix", string(out[:6]), "appended to dst")
		text, got := readOutput(t, reg, out[6:])
		tier := got.Descriptor().Fields().ByName("tier")
		require.NotNil(t, tier, "the output type has the score field")
		assert.Equal(t, protoreflect.FieldNumber(10), tier.Number(), "numbered after the reserved 9")
		assert.Equal(t, protoreflect.Int64Kind, tier.Kind())
		assert.Equal(t, score, got.Get(tier).Int())
		got.Clear(tier)
		want, err := protojson.Marshal(order)
		require.NoError(t, err)
		gotJSON, err := protojson.Marshal(got)
		require.NoError(t, err)
		assert.JSONEq(t, string(want), string(gotJSON), "every field of the order kept")
		assert.Contains(t, text, "// an order", "the input schema's comments are kept")
		assert.Contains(t, text, `import "google/protobuf/timestamp.proto"`)
	}
	assert.Equal(t, sr.TypeProtobuf, reg.types[2], "the output schema is registered as Protobuf")
}

// Each message type of a file, nested ones too, gets its own output schema, and its outputs
// name it with the input's message indexes.
func TestProtobufMessageIndexes(t *testing.T) {
	reg, url := newFakeRegistry(t)
	in := reg.addTyped(orderProto, sr.TypeProtobuf)
	p := newTestProtobuf(t, url)
	for _, tc := range []struct {
		index []int
		name  protoreflect.FullName
		json  string
	}{
		{[]int{0}, "shop.Order", orderProtoJSON},
		{[]int{1}, "shop.Refund", `{"id":"r1"}`},
		{[]int{0, 0}, "shop.Order.Line", `{"sku":"a","qty":3}`},
	} {
		m := protoOrder(t, protoMessage(t, orderProto, tc.index...), tc.json)
		out, err := p.Enrich(nil, "k", protoWire(t, in, tc.index, m), 5)
		require.NoError(t, err, tc.name)
		_, got := readOutput(t, reg, out)
		assert.Equal(t, tc.name, got.Descriptor().FullName())
		assert.Equal(t, int64(5), got.Get(got.Descriptor().Fields().ByName("tier")).Int(), tc.name)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	assert.Len(t, reg.schemas, 4, "the input schema and three output schemas")
}

// A new version of the input schema makes a new version of the output schema.
func TestProtobufNewInputVersion(t *testing.T) {
	reg, url := newFakeRegistry(t)
	v1 := reg.addTyped(orderProto, sr.TypeProtobuf)
	v2text := strings.Replace(orderProto, "  reserved 9;", "  reserved 9;\n  string currency = 11;", 1)
	v2 := reg.addTyped(v2text, sr.TypeProtobuf)
	p := newTestProtobuf(t, url)
	outIDs := map[int]bool{}
	for _, v := range []struct {
		id   int
		text string
	}{{v1, orderProto}, {v2, v2text}, {v1, orderProto}} {
		out, err := p.Enrich(nil, "c1", protoWire(t, v.id, []int{0}, protoOrder(t, protoMessage(t, v.text, 0), orderProtoJSON)), 1)
		require.NoError(t, err)
		var h sr.ConfluentHeader
		id, _, err := h.DecodeID(out)
		require.NoError(t, err)
		outIDs[id] = true
		_, got := readOutput(t, reg, out)
		if v.id == v2 {
			assert.Equal(t, protoreflect.FieldNumber(12), got.Descriptor().Fields().ByName("tier").Number())
		}
	}
	assert.Len(t, outIDs, 2, "one output schema per input schema")
}

func TestProtobufScore(t *testing.T) {
	reg, url := newFakeRegistry(t)
	const scores = `syntax = "proto3";
message Tier { string customer = 1; int64 score = 2; }
message Small { int32 score = 1; }
message Unsigned { uint64 score = 1; }
message Present { optional sint64 score = 1; }`
	id := reg.addTyped(scores, sr.TypeProtobuf)
	p := newTestProtobuf(t, url)
	for _, tc := range []struct {
		index int
		json  string
		want  int64
	}{
		{0, `{"customer":"c1","score":"3"}`, 3},
		{0, `{"customer":"c1"}`, 0}, // proto3: an absent plain field is 0
		{1, `{"score":-2}`, -2},
		{2, `{"score":"1099511627776"}`, 1 << 40},
		{3, `{"score":"0"}`, 0},
	} {
		got, err := p.Score("c1", protoWire(t, id, []int{tc.index}, protoOrder(t, protoMessage(t, scores, tc.index), tc.json)))
		require.NoError(t, err, tc.json)
		assert.Equal(t, tc.want, got, tc.json)
	}
}

// Each kind of bad input is rejected with its reason; none is a failure.
func TestProtobufBadInput(t *testing.T) {
	reg, url := newFakeRegistry(t)
	in := reg.addTyped(orderProto, sr.TypeProtobuf)
	const other = `syntax = "proto3";
message HasTier { int32 tier = 1; }
message NoScore { string customer = 1; }
message TextScore { string score = 1; }
message Unsigned { uint64 score = 1; }
message Present { optional int64 score = 1; }`
	otherID := reg.addTyped(other, sr.TypeProtobuf)
	imports := reg.addTyped(`syntax = "proto3"; import "other.proto"; message A { B b = 1; }`, sr.TypeProtobuf)
	broken := reg.addTyped(`syntax = "proto3"; message {`, sr.TypeProtobuf)
	huge := reg.addTyped(`syntax = "proto3"; message Big { string a = 1; }`+strings.Repeat("\n// padding", maxProtoSchemaBytes/10), sr.TypeProtobuf)
	avroID := reg.add(orderSchema)
	p := newTestProtobuf(t, url)
	order := protoWire(t, in, []int{0}, protoOrder(t, protoMessage(t, orderProto, 0), orderProtoJSON))
	msg := func(index int, json string) []byte {
		return protoWire(t, otherID, []int{index}, protoOrder(t, protoMessage(t, other, index), json))
	}
	assertRejects(t, p, []rejectCase{
		{"empty", false, nil, ReasonEmptyValue},
		{"JSON, not the wire format", false, []byte(`{"id":"o1"}`), ReasonNotWireFormat},
		{"a header and no message indexes", false, order[:5], ReasonNotWireFormat},
		{"a negative index count", false, append(append([]byte{}, order[:5]...), 1), ReasonNotWireFormat},
		{"an ID the registry does not know", false, append([]byte{0, 0, 0, 0x30, 0x39}, order[5:]...), ReasonUnknownSchema},
		{"indexes past the file's messages", false, protoWire(t, in, []int{7}, protoOrder(t, protoMessage(t, orderProto, 0), `{}`)), ReasonSchemaMismatch},
		{"a message cut short", false, order[:len(order)-3], ReasonSchemaMismatch},
		{"an Avro schema's ID", false, append([]byte{0, 0, 0, 0, byte(avroID)}, order[5:]...), ReasonSchemaMismatch},
		{"a schema that imports another file", false, append([]byte{0, 0, 0, 0, byte(imports)}, order[5:]...), ReasonSchemaMismatch},
		{"a schema that does not compile", false, append([]byte{0, 0, 0, 0, byte(broken)}, order[5:]...), ReasonSchemaMismatch},
		{"a schema over the size bound", false, append([]byte{0, 0, 0, 0, byte(huge)}, order[5:]...), ReasonSchemaMismatch},
		{"an input that has the output field", false, msg(0, `{"tier":1}`), ReasonSchemaMismatch},
		{"a score without the score field", true, msg(1, `{"customer":"c"}`), ReasonMissingField},
		{"a score field that is a string", true, msg(2, `{"score":"7"}`), ReasonWrongType},
		{"a score past an int64", true, msg(3, `{"score":"18446744073709551615"}`), ReasonWrongType},
		{"an optional score not set", true, msg(4, `{}`), ReasonMissingField},
		{"a score not in the wire format", true, []byte("7"), ReasonNotWireFormat},
	})
}

// A registry that cannot answer is a failure, never bad input: the record is read again later.
func TestProtobufRegistryDownIsNotBadInput(t *testing.T) {
	reg, url := newFakeRegistry(t)
	in := reg.addTyped(orderProto, sr.TypeProtobuf)
	p := newTestProtobuf(t, url)
	value := protoWire(t, in, []int{0}, protoOrder(t, protoMessage(t, orderProto, 0), orderProtoJSON))
	reg.mu.Lock()
	reg.down = true
	reg.mu.Unlock()
	_, err := p.Enrich(nil, "c1", value, 1)
	require.Error(t, err)
	assert.Empty(t, ReasonOf(err), "not bad input: %v", err)

	reg.mu.Lock()
	reg.down = false
	reg.mu.Unlock()
	_, err = p.Enrich(nil, "c1", value, 1)
	assert.NoError(t, err, "the same record once the registry is back")
}

func FuzzProtobufEnrich(f *testing.F) {
	t := &testing.T{}
	reg, url := newFakeRegistry(t)
	in := reg.addTyped(orderProto, sr.TypeProtobuf)
	p := newTestProtobuf(t, url)
	valid := protoWire(t, in, []int{0}, protoOrder(t, protoMessage(t, orderProto, 0), orderProtoJSON))
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(protoWire(t, in, []int{0, 0}, protoOrder(t, protoMessage(t, orderProto, 0, 0), `{"sku":"a"}`)))
	f.Add([]byte(`{"id":"o1"}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		out, err := p.Enrich(nil, "k", value, -5)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("a failure, not bad input, with the registry up: %v", err)
			}
			return
		}
		_, got := readOutput(t, reg, out)
		tier := got.Descriptor().Fields().ByName("tier")
		if tier == nil || got.Get(tier).Int() != -5 {
			t.Fatalf("output %x of input %x: no score field with the score", out, value)
		}
		var h sr.ConfluentHeader
		_, rest, _ := h.DecodeID(value)
		_, inBody, _ := h.DecodeIndex(rest, maxIndexes)
		_, rest, _ = h.DecodeID(out)
		_, outBody, _ := h.DecodeIndex(rest, maxIndexes)
		if !bytes.HasPrefix(outBody, inBody) {
			t.Fatalf("output %x of input %x: not the input's message followed by the score", out, value)
		}
	})
}

// The order of BenchmarkAvroEnrich as a Protocol Buffers message, for comparison in one run.
func BenchmarkProtobufEnrich(b *testing.B) {
	reg, url := newFakeRegistry(&testing.T{})
	in := reg.addTyped(orderProto, sr.TypeProtobuf)
	p := newTestProtobuf(b, url)
	value := protoWire(b, in, []int{0}, protoOrder(b, protoMessage(b, orderProto, 0), `{"id":"o1","customer":"c1","amount":12.5,"note":"gift","lines":[{"sku":"a","qty":2}]}`))
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = p.Enrich(dst[:0], "c1", value, 7); err != nil {
			b.Fatal(err)
		}
	}
}
