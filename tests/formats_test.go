package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/hamba/avro/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/dlq"
)

const (
	tierV1       = `{"type":"record","name":"Tier","namespace":"shop","fields":[{"name":"customer","type":"string"},{"name":"score","type":"long"}]}`
	tierNoScore  = `{"type":"record","name":"Rank","namespace":"shop","fields":[{"name":"customer","type":"string"}]}`
	avroScored   = 20 // customers c0..c19 have a tier; c20..c24 have none
	avroCustomer = 25
)

// orders returns the order schema the codecs' tests use in format typ (an order with a
// nested record, a repeated field and an optional one), and a second version of it with a
// field "currency" more: a compatible evolution.
func orders(t *testing.T, typ sr.SchemaType) (v1, v2 string) {
	t.Helper()
	// the file, and a line of it followed by the new field
	schema := map[sr.SchemaType]struct{ file, at, field string }{
		sr.TypeAvro:     {"order.avsc", `{"name":"amount","type":"double"},`, `{"name":"currency","type":"string","default":"EUR"},`},
		sr.TypeJSON:     {"order.schema.json", `"amount":{"type":"number"},`, `"currency":{"type":"string"},`},
		sr.TypeProtobuf: {"order.proto", "  reserved 9;", "\n  string currency = 11;"},
	}[typ]
	b, err := os.ReadFile(filepath.Join(repoRoot, "codecs", "testdata", schema.file))
	require.NoError(t, err)
	v1 = string(b)
	v2 = strings.Replace(v1, schema.at, schema.at+schema.field, 1)
	require.NotEqual(t, v1, v2)
	return v1, v2
}

// registryJob returns a client of the registry at url and a job on topics of 4 partitions.
func registryJob(t *testing.T, url string) (*sr.Client, *job) {
	t.Helper()
	reg, err := sr.NewClient(sr.URLs(url))
	require.NoError(t, err)
	j := newJob(t)
	j.createTopics(4)
	return reg, j
}

// confluent is payload in the Confluent wire format: schema id, and for Protobuf the message
// indexes.
func confluent(t *testing.T, id int, index []int, payload []byte) []byte {
	t.Helper()
	var h sr.ConfluentHeader
	value, err := h.AppendEncode(nil, id, index)
	require.NoError(t, err)
	return append(value, payload...)
}

// register registers schema of type typ under subject in the registry and returns its ID.
func register(t *testing.T, reg *sr.Client, subject, schema string, typ sr.SchemaType) int {
	t.Helper()
	id, err := reg.RegisterSchema(context.Background(), subject, sr.Schema{Schema: schema, Type: typ}, -1, -1)
	require.NoError(t, err, subject)
	return id
}

// A real schema registry (Apicurio Registry, through its Confluent-compatible API), shared by
// the registry formats one after the other: a registry takes about 20 s to start.
func TestRegistryFormats(t *testing.T) {
	t.Parallel()
	url, regDir := ownRegistry(t)
	t.Run("avro", func(t *testing.T) { avroWithRegistry(t, url, regDir) })
	t.Run("json-schema", func(t *testing.T) { jsonSchemaWithRegistry(t, url) })
	t.Run("protobuf", func(t *testing.T) { protobufWithRegistry(t, url) })
	t.Run("json-scores", func(t *testing.T) { jsonScoresBesideProtobuf(t, url) })
	t.Run("references", func(t *testing.T) { protobufReferences(t, url) })
	t.Run("confluent-python", func(t *testing.T) { confluentPythonClient(t, url) })
	t.Run("restart", func(t *testing.T) { registryRestart(t, url, regDir) })
}

// Avro records in the Confluent wire format, written with the registry's IDs: every field of an
// order survives into its output with the customer's tier added, unscored customers get -1, a
// second version of the order schema makes a second output schema, each kind of bad record is
// dead-lettered under its reason, and a registry that stops answering for 15 s (SIGSTOP, past
// the format's request timeout) while orders of a schema the replica has not seen arrive costs
// nothing: the processor restarts until the registry answers, with no dead letter and no lost
// or wrong output.
func avroWithRegistry(t *testing.T, url, regDir string) {
	orderV1, orderV2 := orders(t, sr.TypeAvro)
	reg, j := registryJob(t, url)
	v1 := register(t, reg, j.topics.Input+"-value", orderV1, sr.TypeAvro)
	tier := register(t, reg, j.topics.Scores+"-value", tierV1, sr.TypeAvro)
	noScore := register(t, reg, j.topics.Scores+"-value", tierNoScore, sr.TypeAvro)

	scores := make([]*kgo.Record, 0, avroScored+1)
	for c := 0; c < avroScored; c++ {
		key := fmt.Sprintf("c%d", c)
		scores = append(scores, avroRecord(t, j.topics.Scores, key, tier, tierV1, map[string]any{"customer": key, "score": int64(100 + c)}))
	}
	scores = append(scores, avroRecord(t, j.topics.Scores, "c0", noScore, tierNoScore, map[string]any{"customer": "c0"}))
	j.produceRaw(j.topics.Scores, scores...)

	p := j.start(t.TempDir(), "--format", "avro", "--schema-registry", url, "--output-score-field", "tier")
	p.waitRunning(4)
	j.waitChangelog(avroScored)

	sent := map[string]map[string]any{} // order id to the order
	var inputs []*kgo.Record
	for i := 0; i < 50; i++ {
		o := avroOrder(i)
		sent[o["id"].(string)] = o
		inputs = append(inputs, avroRecord(t, j.topics.Input, o["customer"].(string), v1, orderV1, o))
	}
	good := avroRecord(t, j.topics.Input, "c1", v1, orderV1, avroOrder(1000))
	inputs = append(inputs,
		&kgo.Record{Topic: j.topics.Input, Key: []byte("c1"), Value: []byte(`{"id":"json"}`)},                                   // not the wire format
		&kgo.Record{Topic: j.topics.Input, Key: []byte("c1"), Value: append([]byte{0, 0, 0x0f, 0x42, 0x3f}, good.Value[5:]...)}, // an ID nobody registered
		&kgo.Record{Topic: j.topics.Input, Key: []byte("c1"), Value: good.Value[:len(good.Value)-3]},                            // cut short
	)
	j.produceRaw(j.topics.Input, inputs...)

	// The registry stops answering; orders of a new schema version arrive meanwhile.
	v2 := register(t, reg, j.topics.Input+"-value", orderV2, sr.TypeAvro)
	regPID := registryPID(t, regDir)
	require.NoError(t, syscall.Kill(regPID, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(regPID, syscall.SIGCONT) })
	var evolved []*kgo.Record
	for i := 50; i < 60; i++ {
		o := avroOrder(i)
		o["currency"] = "NOK"
		sent[o["id"].(string)] = o
		evolved = append(evolved, avroRecord(t, j.topics.Input, o["customer"].(string), v2, orderV2, o))
	}
	j.produceRaw(j.topics.Input, evolved...)
	// Past the format's 10 s request timeout: a lookup fails, and the processor is restarted
	// with backoff, the records read again, rather than dead-lettered.
	time.Sleep(15 * time.Second)
	require.NoError(t, syscall.Kill(regPID, syscall.SIGCONT))

	outs, repeats := j.outputsOfInputs(len(sent), 2*time.Minute)
	require.Len(t, outs, len(sent), "an output of every input")
	outputSchemas, orders := map[int]bool{}, map[string]bool{}
	for _, r := range outs {
		var h sr.ConfluentHeader
		id, body, err := h.DecodeID(r.Value)
		require.NoError(t, err)
		outputSchemas[id] = true
		s, err := reg.SchemaByID(context.Background(), id)
		require.NoError(t, err)
		schema, err := avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{})
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, avro.Unmarshal(schema, body, &got))
		want := sent[got["id"].(string)]
		require.NotNil(t, want, "an output of an order sent: %v", got)
		orders[got["id"].(string)] = true
		wantTier := int64(codecs.NoScore)
		var c int
		_, _ = fmt.Sscanf(want["customer"].(string), "c%d", &c)
		if c < avroScored {
			wantTier = int64(100 + c)
		}
		expected := map[string]any{"tier": wantTier}
		for k, v := range want {
			expected[k] = v
		}
		assert.Equal(t, expected, got, "every field of the order, and its customer's tier")
	}
	assert.Len(t, orders, len(sent), "every order enriched")
	assert.Len(t, outputSchemas, 2, "a second order schema made a second output schema")

	reasons := map[string]int{}
	for _, r := range j.records(j.topics.DLQ(), 5, 10*time.Second) {
		reasons[headers(r)[dlq.HeaderDLQReason]]++
	}
	assert.Equal(t, map[string]int{string(codecs.ReasonNotWireFormat): 1, string(codecs.ReasonUnknownSchema): 1,
		string(codecs.ReasonSchemaMismatch): 1, string(codecs.ReasonMissingField): 1}, reasons,
		"each bad record under its reason, and no good one while the registry was away")
	restarts := strings.Count(p.logs(), "processor failed")
	assert.Positive(t, restarts, "a lookup failed while the registry was paused: the failure path ran")
	t.Logf("registry paused for 15 s: %d processor restarts meanwhile, %d outputs written again (at-least-once)", restarts, repeats)
}

func avroOrder(i int) map[string]any {
	return map[string]any{"id": fmt.Sprintf("o%d", i), "customer": fmt.Sprintf("c%d", i%avroCustomer), "amount": float64(i) + 0.5,
		"note": nil, "lines": []any{map[string]any{"sku": fmt.Sprintf("s%d", i), "qty": int(i % 7)}}}
}

// avroRecord is v in the Confluent wire format with schema id.
func avroRecord(t *testing.T, topic, key string, id int, schema string, v any) *kgo.Record {
	t.Helper()
	s, err := avro.ParseWithCache(schema, "", &avro.SchemaCache{})
	require.NoError(t, err)
	body, err := avro.Marshal(s, v)
	require.NoError(t, err)
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: confluent(t, id, nil, body)}
}

// ownRegistry starts a schema registry for one test (scripts/registry.sh) and returns the URL
// of its Confluent-compatible API and its directory.
func ownRegistry(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	out, err := runScript(filepath.Join(repoRoot, "scripts/registry.sh"), "start", dir)
	if err != nil {
		t.Fatalf("scripts/registry.sh start: %v", err)
	}
	t.Cleanup(func() { _, _ = runScript(filepath.Join(repoRoot, "scripts/registry.sh"), "stop", dir) })
	return out, dir
}

// runScript runs a script of scripts/ and returns what it printed on stdout, trimmed.
func runScript(script string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func registryPID(t *testing.T, dir string) int {
	t.Helper()
	var pid int
	b, err := os.ReadFile(filepath.Join(dir, "registry.pid"))
	require.NoError(t, err)
	_, err = fmt.Sscanf(string(b), "%d", &pid)
	require.NoError(t, err)
	return pid
}

// JSON records checked against JSON Schemas from the registry: every order comes back byte for
// byte with its customer's tier added last (-1 for unscored customers), each output is valid
// under the output schema the registry then holds, a second version of the order schema makes a
// second output schema, and each kind of bad record is dead-lettered under its reason.
func jsonSchemaWithRegistry(t *testing.T, url string) {
	reg, j := registryJob(t, url)
	orderV1, orderV2 := orders(t, sr.TypeJSON)
	v1 := register(t, reg, j.topics.Input+"-value", orderV1, sr.TypeJSON)
	v2 := register(t, reg, j.topics.Input+"-value", orderV2, sr.TypeJSON)
	tier := register(t, reg, j.topics.Scores+"-value", `{"type":"object","properties":{"customer":{"type":"string"},"score":{"type":"integer"}},"required":["customer","score"]}`, sr.TypeJSON)

	wire := func(topic, key string, id int, text string) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(key), Value: confluent(t, id, nil, []byte(text))}
	}
	var scores []*kgo.Record
	for c := 0; c < avroScored; c++ {
		scores = append(scores, wire(j.topics.Scores, fmt.Sprintf("c%d", c), tier, fmt.Sprintf(`{"customer":"c%d","score":%d}`, c, 100+c)))
	}
	j.produceRaw(j.topics.Scores, scores...)

	p := j.start(t.TempDir(), "--format", "json-schema", "--schema-registry", url, "--output-score-field", "tier")
	p.waitRunning(4)
	j.waitChangelog(avroScored)

	sent := map[string]string{} // order id to the order's JSON text
	var inputs []*kgo.Record
	for i := 0; i < 60; i++ {
		id, text := v1, fmt.Sprintf(`{"id":"o%d","customer":"c%d","amount":%d.5,"note":null,"lines":[{"sku":"s%d","qty":%d}]}`, i, i%avroCustomer, i, i, i%7)
		if i >= 50 {
			id, text = v2, fmt.Sprintf(`{"id":"o%d", "currency":"NOK", "customer":"c%d", "amount":%d}`, i, i%avroCustomer, i)
		}
		sent[fmt.Sprintf("o%d", i)] = text
		inputs = append(inputs, wire(j.topics.Input, fmt.Sprintf("c%d", i%avroCustomer), id, text))
	}
	inputs = append(inputs,
		&kgo.Record{Topic: j.topics.Input, Key: []byte("c1"), Value: []byte(`{"id":"plain"}`)}, // not the wire format
		wire(j.topics.Input, "c1", 999999, `{"id":"x","customer":"c1","amount":1}`),            // an ID nobody registered
		wire(j.topics.Input, "c1", v1, `{"id":"x","customer":"c1","amount":"twelve"}`),         // its schema rejects it
		wire(j.topics.Input, "c1", v1, `{"id":"x","customer":`),                                // not JSON
	)
	j.produceRaw(j.topics.Input, inputs...)

	outs := j.records(j.topics.Output, len(sent), 2*time.Minute)
	require.Len(t, outs, len(sent))
	outputSchemas := map[int]*jsonschema.Schema{}
	for _, r := range outs {
		var h sr.ConfluentHeader
		id, body, err := h.DecodeID(r.Value)
		require.NoError(t, err)
		if outputSchemas[id] == nil {
			s, err := reg.SchemaByID(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, sr.TypeJSON, s.Type)
			doc, err := jsonschema.UnmarshalJSON(strings.NewReader(s.Schema))
			require.NoError(t, err)
			c := jsonschema.NewCompiler()
			require.NoError(t, c.AddResource("output.json", doc))
			outputSchemas[id], err = c.Compile("output.json")
			require.NoError(t, err)
		}
		var order struct{ ID, Customer string }
		require.NoError(t, json.Unmarshal(body, &order))
		text := sent[order.ID]
		require.NotEmpty(t, text, "an output of an order sent: %s", body)
		wantTier := codecs.NoScore
		var c int
		_, _ = fmt.Sscanf(order.Customer, "c%d", &c)
		if c < avroScored {
			wantTier = int64(100 + c)
		}
		var compact bytes.Buffer // the format keeps values byte for byte, not the space between them
		require.NoError(t, json.Compact(&compact, []byte(text)))
		assert.Equal(t, strings.TrimSuffix(compact.String(), "}")+fmt.Sprintf(`,"tier":%d}`, wantTier), string(body),
			"the order, every value byte for byte, and its customer's tier")
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		require.NoError(t, err)
		assert.NoError(t, outputSchemas[id].Validate(inst), "the registered output schema accepts the output")
	}
	assert.Len(t, outputSchemas, 2, "a second order schema made a second output schema")

	reasons := map[string]int{}
	for _, r := range j.records(j.topics.DLQ(), 5, 10*time.Second) {
		reasons[headers(r)[dlq.HeaderDLQReason]]++
	}
	assert.Equal(t, map[string]int{string(codecs.ReasonNotWireFormat): 1, string(codecs.ReasonUnknownSchema): 1,
		string(codecs.ReasonSchemaMismatch): 1, string(codecs.ReasonInvalidJSON): 1}, reasons, "each bad record under its reason")
}

// Protocol Buffers records, each naming its message type with the Confluent message indexes:
// every order comes back with all its fields and its customer's tier in a new int64 field
// numbered after the message's reserved one (-1 for unscored customers), under an output
// schema the registry accepted and holds, the nested message type of the same file gets its
// own output schema, and each kind of bad record is dead-lettered under its reason.
func protobufWithRegistry(t *testing.T, url string) {
	reg, j := registryJob(t, url)
	orderText, _ := orders(t, sr.TypeProtobuf)
	const tierText = `syntax = "proto3";
package shop;
message Tier {
  string customer = 1;
  int64 score = 2;
}
`
	orderID := register(t, reg, j.topics.Input+"-value", orderText, sr.TypeProtobuf)
	tierID := register(t, reg, j.topics.Scores+"-value", tierText, sr.TypeProtobuf)
	orderType, lineType, tierType := protoType(t, orderText, 0), protoType(t, orderText, 0, 0), protoType(t, tierText, 0)

	wire := func(topic, key string, id int, index []int, md protoreflect.MessageDescriptor, json string) *kgo.Record {
		m := dynamicpb.NewMessage(md)
		require.NoError(t, protojson.Unmarshal([]byte(json), m))
		body, err := proto.Marshal(m)
		require.NoError(t, err)
		return &kgo.Record{Topic: topic, Key: []byte(key), Value: confluent(t, id, index, body)}
	}
	var scores []*kgo.Record
	for c := 0; c < avroScored; c++ {
		scores = append(scores, wire(j.topics.Scores, fmt.Sprintf("c%d", c), tierID, []int{0}, tierType, fmt.Sprintf(`{"customer":"c%d","score":"%d"}`, c, 100+c)))
	}
	j.produceRaw(j.topics.Scores, scores...)

	p := j.start(t.TempDir(), "--format", "protobuf", "--schema-registry", url, "--output-score-field", "tier")
	p.waitRunning(4)
	j.waitChangelog(avroScored)

	sent := map[string]string{} // order id (or line sku) to its protojson text
	var inputs []*kgo.Record
	for i := 0; i < 60; i++ {
		key := fmt.Sprintf("c%d", i%avroCustomer)
		if i >= 50 { // the nested message type, Order.Line, at indexes [0, 0]
			text := fmt.Sprintf(`{"sku":"s%d","qty":%d}`, i, i)
			sent[fmt.Sprintf("s%d", i)] = text
			inputs = append(inputs, wire(j.topics.Input, key, orderID, []int{0, 0}, lineType, text))
			continue
		}
		text := fmt.Sprintf(`{"id":"o%d","customer":"%s","amount":%d.5,"lines":[{"sku":"a","qty":%d}],"placed":"2026-12-06T10:00:%02dZ"}`, i, key, i, i%7+1, i) // no zero values: proto3 leaves them out
		sent[fmt.Sprintf("o%d", i)] = text
		inputs = append(inputs, wire(j.topics.Input, key, orderID, []int{0}, orderType, text))
	}
	good := wire(j.topics.Input, "c1", orderID, []int{0}, orderType, `{"id":"x","customer":"c1"}`)
	inputs = append(inputs,
		&kgo.Record{Topic: j.topics.Input, Key: []byte("c1"), Value: []byte(`{"id":"plain"}`)},                                  // not the wire format
		&kgo.Record{Topic: j.topics.Input, Key: []byte("c1"), Value: append([]byte{0, 0, 0x0f, 0x42, 0x3f}, good.Value[5:]...)}, // an ID nobody registered
		&kgo.Record{Topic: j.topics.Input, Key: []byte("c1"), Value: good.Value[:len(good.Value)-2]},                            // cut short
	)
	j.produceRaw(j.topics.Input, inputs...)

	outs := j.records(j.topics.Output, len(sent), 2*time.Minute)
	require.Len(t, outs, len(sent))
	outputSchemas := map[int]bool{}
	for _, r := range outs {
		var h sr.ConfluentHeader
		id, rest, err := h.DecodeID(r.Value)
		require.NoError(t, err)
		index, body, err := h.DecodeIndex(rest, 8)
		require.NoError(t, err)
		outputSchemas[id] = true
		s, err := reg.SchemaByID(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, sr.TypeProtobuf, s.Type)
		got := dynamicpb.NewMessage(protoType(t, s.Schema, index...))
		require.NoError(t, proto.Unmarshal(body, got), "the output reads under its registered schema")
		tier := got.Descriptor().Fields().ByName("tier")
		require.NotNil(t, tier, "the registered output type has the score field")
		wantTier := codecs.NoScore
		var c int
		_, _ = fmt.Sscanf(string(r.Key), "c%d", &c)
		if c < avroScored {
			wantTier = int64(100 + c)
		}
		assert.Equal(t, wantTier, got.Get(tier).Int(), "the customer's tier")
		got.Clear(tier)
		name := "id"
		if len(index) == 2 {
			name = "sku"
		}
		text := sent[got.Get(got.Descriptor().Fields().ByName(protoreflect.Name(name))).String()]
		require.NotEmpty(t, text, "an output of an input sent")
		gotJSON, err := protojson.Marshal(got)
		require.NoError(t, err)
		assert.JSONEq(t, text, string(gotJSON), "every field of the input kept")
	}
	assert.Len(t, outputSchemas, 2, "Order and Order.Line: an output schema each")

	reasons := map[string]int{}
	for _, r := range j.records(j.topics.DLQ(), 4, 10*time.Second) {
		reasons[headers(r)[dlq.HeaderDLQReason]]++
	}
	assert.Equal(t, map[string]int{string(codecs.ReasonNotWireFormat): 1, string(codecs.ReasonUnknownSchema): 1,
		string(codecs.ReasonSchemaMismatch): 1}, reasons, "each bad record under its reason")
}

// protoType compiles a .proto text and returns its message type at index.
func protoType(t *testing.T, text string, index ...int) protoreflect.MessageDescriptor {
	t.Helper()
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"schema.proto": text}),
	})}
	files, err := c.Compile(context.Background(), "schema.proto")
	require.NoError(t, err)
	msgs := files[0].Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range index {
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	return md
}

// Scores in JSON, inputs in Protobuf (--scores-format json): each order gets the tier its
// customer's JSON score record set, -1 without one, and a JSON score without the score field
// is dead-lettered.
func jsonScoresBesideProtobuf(t *testing.T, url string) {
	reg, j := registryJob(t, url)
	const orderText = `syntax = "proto3";
message Order {
  string id = 1;
}
`
	orderID := register(t, reg, j.topics.Input+"-value", orderText, sr.TypeProtobuf)
	orderType := protoType(t, orderText, 0)
	var scores []*kgo.Record
	for c := 0; c < avroScored; c++ {
		scores = append(scores, &kgo.Record{Topic: j.topics.Scores, Key: []byte(fmt.Sprintf("c%d", c)),
			Value: []byte(fmt.Sprintf(`{"customer":"c%d","tier":%d}`, c, 100+c))})
	}
	scores = append(scores, &kgo.Record{Topic: j.topics.Scores, Key: []byte("c0"), Value: []byte(`{"customer":"c0"}`)})
	j.produceRaw(j.topics.Scores, scores...)

	p := j.start(t.TempDir(), "--input-format", "protobuf", "--scores-format", "json", "--score-field", "tier",
		"--output-score-field", "tier", "--schema-registry", url)
	p.waitRunning(4)
	j.waitChangelog(avroScored)
	var inputs []*kgo.Record
	for i := 0; i < avroCustomer; i++ {
		m := dynamicpb.NewMessage(orderType)
		m.Set(orderType.Fields().ByName("id"), protoreflect.ValueOfString(fmt.Sprintf("o%d", i)))
		body, err := proto.Marshal(m)
		require.NoError(t, err)
		inputs = append(inputs, &kgo.Record{Topic: j.topics.Input, Key: []byte(fmt.Sprintf("c%d", i)), Value: confluent(t, orderID, []int{0}, body)})
	}
	j.produceRaw(j.topics.Input, inputs...)

	outs := j.records(j.topics.Output, avroCustomer, time.Minute)
	require.Len(t, outs, avroCustomer)
	for _, r := range outs {
		var h sr.ConfluentHeader
		id, rest, err := h.DecodeID(r.Value)
		require.NoError(t, err)
		index, body, err := h.DecodeIndex(rest, 8)
		require.NoError(t, err)
		s, err := reg.SchemaByID(context.Background(), id)
		require.NoError(t, err)
		got := dynamicpb.NewMessage(protoType(t, s.Schema, index...))
		require.NoError(t, proto.Unmarshal(body, got))
		var c int
		_, _ = fmt.Sscanf(string(r.Key), "c%d", &c)
		want := codecs.NoScore
		if c < avroScored {
			want = int64(100 + c)
		}
		assert.Equal(t, want, got.Get(got.Descriptor().Fields().ByName("tier")).Int(), "order of %s", r.Key)
	}
	reasons := map[string]int{}
	for _, r := range j.records(j.topics.DLQ(), 2, 10*time.Second) {
		reasons[headers(r)[dlq.HeaderDLQReason]]++
	}
	assert.Equal(t, map[string]int{string(codecs.ReasonMissingField): 1}, reasons, "the JSON score without its field")
}

// registryFormatCase is one registry format in the restart test: the flags that choose it, its
// input schema in two versions, and an input record of either.
type registryFormatCase struct {
	format   string
	typ      sr.SchemaType
	versions [2]string
	record   func(t *testing.T, topic string, id, version, i int) *kgo.Record
}

func registryFormatCases(t *testing.T) []registryFormatCase {
	avroV1, avroV2 := orders(t, sr.TypeAvro)
	jsonV1, jsonV2 := orders(t, sr.TypeJSON)
	protoV1, protoV2 := orders(t, sr.TypeProtobuf)
	return []registryFormatCase{
		{"avro", sr.TypeAvro, [2]string{avroV1, avroV2}, func(t *testing.T, topic string, id, version, i int) *kgo.Record {
			o := avroOrder(i)
			if version == 1 {
				o["currency"] = "NOK"
			}
			return avroRecord(t, topic, o["customer"].(string), id, []string{avroV1, avroV2}[version], o)
		}},
		{"json-schema", sr.TypeJSON, [2]string{jsonV1, jsonV2}, func(t *testing.T, topic string, id, version, i int) *kgo.Record {
			text := fmt.Sprintf(`{"id":"o%d","customer":"c%d","amount":%d}`, i, i%avroCustomer, i)
			if version == 1 {
				text = fmt.Sprintf(`{"id":"o%d","customer":"c%d","amount":%d,"currency":"NOK"}`, i, i%avroCustomer, i)
			}
			return &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("c%d", i%avroCustomer)), Value: confluent(t, id, nil, []byte(text))}
		}},
		{"protobuf", sr.TypeProtobuf, [2]string{protoV1, protoV2}, func(t *testing.T, topic string, id, version, i int) *kgo.Record {
			m := dynamicpb.NewMessage(protoType(t, []string{protoV1, protoV2}[version], 0))
			m.Set(m.Descriptor().Fields().ByName("id"), protoreflect.ValueOfString(fmt.Sprintf("o%d", i)))
			if version == 1 {
				m.Set(m.Descriptor().Fields().ByName("currency"), protoreflect.ValueOfString("NOK"))
			}
			body, err := proto.Marshal(m)
			require.NoError(t, err)
			return &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("c%d", i%avroCustomer)), Value: confluent(t, id, []int{0}, body)}
		}},
	}
}

// The registry stopped (SIGTERM) and started again on its stored data while a replica of each
// format has inputs of a schema version it has not seen: each replica waits, says so in
// /readyz, and once the registry is back, with the same schemas and IDs, every input is
// enriched and nothing is dead-lettered.
func registryRestart(t *testing.T, url, regDir string) {
	reg, err := sr.NewClient(sr.URLs(url))
	require.NoError(t, err)
	type running struct {
		registryFormatCase
		j      *job
		p      *proc
		ids    [2]int
		output map[int]bool // output schema IDs seen
	}
	var all []*running
	for _, fc := range registryFormatCases(t) {
		r := &running{registryFormatCase: fc, j: newJob(t), output: map[int]bool{}}
		r.j.createTopics(4)
		for v, schema := range fc.versions {
			r.ids[v] = register(t, reg, r.j.topics.Input+"-value", schema, fc.typ)
		}
		r.p = r.j.start(t.TempDir(), "--format", fc.format, "--schema-registry", url)
		all = append(all, r)
	}
	const before, during = 5, 10
	for _, r := range all {
		r.p.waitRunning(4)
		var inputs []*kgo.Record
		for i := 0; i < before; i++ {
			inputs = append(inputs, r.record(t, r.j.topics.Input, r.ids[0], 0, i))
		}
		r.j.produceRaw(r.j.topics.Input, inputs...)
		require.Len(t, r.j.records(r.j.topics.Output, before, time.Minute), before, "%s: outputs before the stop", r.format)
	}

	_, err = runScript(filepath.Join(repoRoot, "scripts/registry.sh"), "stop", regDir)
	require.NoError(t, err)
	stopped := time.Now()
	for _, r := range all {
		var inputs []*kgo.Record
		for i := before; i < before+during; i++ {
			inputs = append(inputs, r.record(t, r.j.topics.Input, r.ids[i%2], i%2, i))
		}
		r.j.produceRaw(r.j.topics.Input, inputs...)
	}
	for _, r := range all {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			rd, err := r.p.ready()
			if assert.NoError(c, err) {
				assert.False(c, rd.Ready)
				assert.Equal(c, "waiting for the schema registry", rd.Reason)
			}
		}, time.Minute, 100*time.Millisecond, "%s: /readyz shows the wait", r.format)
	}
	again, err := runScript(filepath.Join(repoRoot, "scripts/registry.sh"), "start", regDir)
	require.NoError(t, err)
	require.Equal(t, url, again, "the registry came back at its address")
	t.Logf("registry stopped and started again in %s", time.Since(stopped).Round(time.Millisecond))

	for _, r := range all {
		outs, repeats := r.j.outputsOfInputs(before+during, 2*time.Minute)
		require.Len(t, outs, before+during, "%s: every input enriched", r.format)
		for _, o := range outs {
			var h sr.ConfluentHeader
			id, _, err := h.DecodeID(o.Value)
			require.NoError(t, err)
			r.output[id] = true
		}
		assert.Len(t, r.output, 2, "%s: an output schema for each input version", r.format)
		assert.Empty(t, r.j.records(r.j.topics.DLQ(), 1, 3*time.Second), "%s: nothing dead-lettered", r.format)
		r.p.waitRunning(4)
		t.Logf("%s: %d processor restarts while the registry was away, %d outputs written again (at-least-once)",
			r.format, strings.Count(r.p.logs(), "processor failed"), repeats)
	}
}

// confluentKafkaPython is the version of Confluent's Python client the interoperability test
// installs from PyPI.
const confluentKafkaPython = "2.16.2"

// Confluent's own Python client and serializers, which nobody here wrote, on both ends: its
// AvroSerializer registers the order and tier schemas and writes the records, enricher enriches
// them, and its AvroDeserializer reads every output by the output schema's ID with every field
// of the order and the customer's tier (-1 for customers without one).
func confluentPythonClient(t *testing.T, url string) {
	pythonPath := confluentPython(t)
	j := newJob(t)
	j.createTopics(4)
	p := j.start(t.TempDir(), "--format", "avro", "--schema-registry", url, "--output-score-field", "tier")
	p.waitRunning(4)

	script := filepath.Join(repoRoot, "tests", "testdata", "confluent_client.py")
	run := func(args ...string) []string {
		t.Helper()
		// A step that hangs fails here, with Python's stack of every thread (faulthandler
		// prints it on SIGABRT), instead of holding the suite until its own timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "python3", append([]string{script}, args...)...)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGABRT) }
		cmd.WaitDelay = 10 * time.Second
		cmd.Env = append(os.Environ(), "PYTHONPATH="+pythonPath, "PYTHONFAULTHANDLER=1")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		require.NoError(t, cmd.Run(), "confluent_client.py %s: %s", args[0], errOut.String())
		return strings.Split(strings.TrimSpace(out.String()), "\n")
	}
	sent := map[string]map[string]any{}
	for _, line := range run("produce", j.brokers, url, j.topics.Input, j.topics.Scores, filepath.Join(repoRoot, "codecs", "testdata", "order.avsc")) {
		var order map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &order))
		sent[order["id"].(string)] = order
	}
	require.Len(t, sent, 30)
	got := run("consume", j.brokers, url, j.topics.Output, strconv.Itoa(len(sent)))
	require.Len(t, got, len(sent))
	for _, line := range got {
		var out struct {
			Key   string
			Value map[string]any
		}
		require.NoError(t, json.Unmarshal([]byte(line), &out))
		want := sent[fmt.Sprint(out.Value["id"])]
		require.NotNil(t, want, "an output of an order sent: %s", line)
		var c int
		_, _ = fmt.Sscanf(out.Key, "c%d", &c)
		tier := float64(codecs.NoScore)
		if c < 7 {
			tier = float64(100 + c)
		}
		expected := map[string]any{"tier": tier}
		for k, v := range want {
			expected[k] = v
		}
		assert.Equal(t, expected, out.Value, "every field of the order, and its customer's tier")
	}
}

// confluentPython installs Confluent's Python client from PyPI into the user's cache, once, and
// returns the directory to put on PYTHONPATH.
func confluentPython(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	dir := filepath.Join(cache, "enricher", "confluent-kafka-"+confluentKafkaPython)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir
	}
	require.NoError(t, os.RemoveAll(dir))
	cmd := exec.Command("python3", "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", dir,
		"confluent-kafka[avro,schemaregistry]=="+confluentKafkaPython)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "pip install confluent-kafka: %s", out)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644))
	return dir
}

// A .proto schema that imports another subject's schema, a registry reference as Confluent's
// serializers register one: the replica reads it with the imported file, and the output schema
// the registry accepts carries the same reference.
func protobufReferences(t *testing.T, url string) {
	reg, j := registryJob(t, url)
	const moneyText = "syntax = \"proto3\";\npackage shop;\nmessage Money {\n  int64 units = 1;\n  string currency = 2;\n}\n"
	const orderText = "syntax = \"proto3\";\npackage shop;\nimport \"shop/money.proto\";\nmessage Order {\n  string id = 1;\n  Money total = 2;\n}\n"
	moneySubject := j.topics.Input + "-shop-money"
	register(t, reg, moneySubject, moneyText, sr.TypeProtobuf)
	ref := sr.SchemaReference{Name: "shop/money.proto", Subject: moneySubject, Version: 1}
	orderID, err := reg.RegisterSchema(context.Background(), j.topics.Input+"-value",
		sr.Schema{Schema: orderText, Type: sr.TypeProtobuf, References: []sr.SchemaReference{ref}}, -1, -1)
	require.NoError(t, err)

	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"order.proto": orderText, "shop/money.proto": moneyText}),
	})}
	files, err := c.Compile(context.Background(), "order.proto")
	require.NoError(t, err)
	orderType := files[0].Messages().Get(0)

	p := j.start(t.TempDir(), "--format", "protobuf", "--schema-registry", url, "--output-score-field", "tier")
	p.waitRunning(4)
	var inputs []*kgo.Record
	for i := 0; i < 10; i++ {
		m := dynamicpb.NewMessage(orderType)
		require.NoError(t, protojson.Unmarshal([]byte(fmt.Sprintf(`{"id":"o%d","total":{"units":"%d","currency":"NOK"}}`, i, 100+i)), m))
		body, err := proto.Marshal(m)
		require.NoError(t, err)
		inputs = append(inputs, &kgo.Record{Topic: j.topics.Input, Key: []byte(fmt.Sprintf("c%d", i)), Value: confluent(t, orderID, []int{0}, body)})
	}
	j.produceRaw(j.topics.Input, inputs...)
	outs := j.records(j.topics.Output, len(inputs), time.Minute)
	require.Len(t, outs, len(inputs))
	for _, r := range outs {
		var h sr.ConfluentHeader
		id, rest, err := h.DecodeID(r.Value)
		require.NoError(t, err)
		_, body, err := h.DecodeIndex(rest, 8)
		require.NoError(t, err)
		s, err := reg.SchemaByID(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, []sr.SchemaReference{ref}, s.References, "the output schema carries the order's reference")
		c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(map[string]string{"out.proto": s.Schema, "shop/money.proto": moneyText}),
		})}
		files, err := c.Compile(context.Background(), "out.proto")
		require.NoError(t, err, "the registered output schema compiles with its reference")
		got := dynamicpb.NewMessage(files[0].Messages().Get(0))
		require.NoError(t, proto.Unmarshal(body, got))
		text, err := protojson.Marshal(got)
		require.NoError(t, err)
		var i int
		_, _ = fmt.Sscanf(string(r.Key), "c%d", &i)
		assert.JSONEq(t, fmt.Sprintf(`{"id":"o%d","total":{"units":"%d","currency":"NOK"},"tier":"-1"}`, i, 100+i), string(text))
	}
}
