package codecs

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
)

// fakeRegistry is the part of a schema registry's REST API the Avro format uses: schemas by ID,
// and registration under a subject. It is for unit tests; the system tests use a real one.
type fakeRegistry struct {
	t       *testing.T
	mu      sync.Mutex
	schemas map[int]string
	types   map[int]sr.SchemaType
	refs    map[int][]sr.SchemaReference
	ids     map[string]int         // schema text to ID
	subject map[string]map[int]int // subject, version: ID
	lookups int                    // GET /schemas/ids/{id} requests
	down    bool
}

func newFakeRegistry(t *testing.T) (*fakeRegistry, string) {
	f := newFake(t)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// add registers an Avro schema.
func (f *fakeRegistry) add(schema string) int { return f.addTyped(schema, sr.TypeAvro) }

func newFake(t *testing.T) *fakeRegistry {
	return &fakeRegistry{t: t, schemas: map[int]string{}, types: map[int]sr.SchemaType{}, refs: map[int][]sr.SchemaReference{},
		ids: map[string]int{}, subject: map[string]map[int]int{}}
}

// addVersion registers schema as version 1 of subject, referencing refs, and returns its ID.
func (f *fakeRegistry) addVersion(subject, schema string, typ sr.SchemaType, refs ...sr.SchemaReference) int {
	id := f.addTyped(schema, typ)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refs[id] = refs
	if f.subject[subject] == nil {
		f.subject[subject] = map[int]int{}
	}
	f.subject[subject][1] = id
	return id
}

func (f *fakeRegistry) addTyped(schema string, typ sr.SchemaType) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.ids[schema]; ok {
		return id
	}
	id := len(f.schemas) + 1
	f.schemas[id], f.types[id], f.ids[schema] = schema, typ, id
	return id
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		http.Error(w, `{"error_code":50001,"message":"down"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/schemas/ids/"):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/schemas/ids/"))
		f.mu.Lock()
		f.lookups++
		s, ok := f.schemas[id]
		typ, refs := f.types[id], f.refs[id]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error_code":40403,"message":"Schema not found"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(sr.Schema{Schema: s, Type: typ, References: refs})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/subjects/"):
		subject, version, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/subjects/"), "/versions/")
		v, _ := strconv.Atoi(version)
		f.mu.Lock()
		id, ok := f.subject[subject][v]
		s, typ, refs := f.schemas[id], f.types[id], f.refs[id]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error_code":40402,"message":"Version not found"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(sr.SubjectSchema{Subject: subject, Version: v, ID: id, Schema: sr.Schema{Schema: s, Type: typ, References: refs}})
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/versions"):
		var body sr.Schema
		require.NoError(f.t, json.NewDecoder(r.Body).Decode(&body))
		id := f.addTyped(body.Schema, body.Type)
		f.mu.Lock()
		f.refs[id] = body.References
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id})
	default:
		http.NotFound(w, r)
	}
}

// orderSchema is an order with a union, an array and a nested record; the system tests read
// the same file.
var orderSchema = func() string {
	b, err := os.ReadFile("testdata/order.avsc")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

const tierSchema = `{"type":"record","name":"Tier","fields":[{"name":"customer","type":"string"},{"name":"score","type":"int"}]}`

// wire encodes v with schema and puts the Confluent header of id in front.
func wire(t *testing.T, id int, schema string, v any) []byte {
	t.Helper()
	s, err := parseAvro(schema)
	require.NoError(t, err)
	body, err := avro.Marshal(s, v)
	require.NoError(t, err)
	var h sr.ConfluentHeader
	out, err := h.AppendEncode(nil, id, nil)
	require.NoError(t, err)
	return append(out, body...)
}

func order(id string) map[string]any {
	return map[string]any{"id": id, "customer": "c1", "amount": 12.5, "note": "gift",
		"lines": []any{map[string]any{"sku": "a", "qty": 2}}}
}

func newTestAvro(t *testing.T, url string) *Avro {
	t.Helper()
	a, err := NewAvro(AvroConfig{Registry: Registry{URL: url}, OutputSubject: "out-value", ScoreField: "score", OutputScoreField: "tier"})
	require.NoError(t, err)
	return a
}

func TestAvroEnrichKeepsEveryField(t *testing.T) {
	reg, url := newFakeRegistry(t)
	in := reg.add(orderSchema)
	a := newTestAvro(t, url)

	for _, score := range []int64{7, NoScore} {
		out, err := a.Enrich([]byte("prefix"), "c1", wire(t, in, orderSchema, order("o1")), score)
		require.NoError(t, err)
		require.Equal(t, "prefix", string(out[:6]), "appended to dst")
		var h sr.ConfluentHeader
		outID, body, err := h.DecodeID(out[6:])
		require.NoError(t, err)
		reg.mu.Lock()
		outText := reg.schemas[outID]
		reg.mu.Unlock()
		require.NotEmpty(t, outText, "the output schema is registered")
		outSchema, err := parseAvro(outText)
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, avro.Unmarshal(outSchema, body, &got))
		want := order("o1")
		want["tier"] = score
		assert.Equal(t, want, got)
		assert.Contains(t, outText, `"doc":"an order"`, "the input schema's text is kept")
	}
	reg.mu.Lock()
	assert.Equal(t, 1, reg.lookups, "the input schema is fetched once")
	reg.mu.Unlock()
}

// A new version of the input schema makes a new version of the output schema.
func TestAvroOutputSchemaEvolvesWithTheInput(t *testing.T) {
	reg, url := newFakeRegistry(t)
	v1 := reg.add(orderSchema)
	v2Schema := strings.Replace(orderSchema, `{"name":"amount","type":"double"},`,
		`{"name":"amount","type":"double"},{"name":"currency","type":"string","default":"EUR"},`, 1)
	v2 := reg.add(v2Schema)
	a := newTestAvro(t, url)
	out1, err := a.Enrich(nil, "c1", wire(t, v1, orderSchema, order("o1")), 1)
	require.NoError(t, err)
	rec := order("o2")
	rec["currency"] = "NOK"
	out2, err := a.Enrich(nil, "c1", wire(t, v2, v2Schema, rec), 2)
	require.NoError(t, err)
	var h sr.ConfluentHeader
	id1, _, _ := h.DecodeID(out1)
	id2, body2, _ := h.DecodeID(out2)
	assert.NotEqual(t, id1, id2)
	reg.mu.Lock()
	outText := reg.schemas[id2]
	reg.mu.Unlock()
	outSchema, err := parseAvro(outText)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, avro.Unmarshal(outSchema, body2, &got))
	assert.Equal(t, "NOK", got["currency"])
	assert.Equal(t, int64(2), got["tier"])
}

func TestAvroScore(t *testing.T) {
	reg, url := newFakeRegistry(t)
	tier := reg.add(tierSchema)
	longScore := reg.add(`{"type":"record","name":"L","fields":[{"name":"score","type":"long"}]}`)
	a := newTestAvro(t, url)
	got, err := a.Score("c1", wire(t, tier, tierSchema, map[string]any{"customer": "c1", "score": 3}))
	require.NoError(t, err)
	assert.Equal(t, int64(3), got)
	got, err = a.Score("c1", wire(t, longScore, `{"type":"record","name":"L","fields":[{"name":"score","type":"long"}]}`, map[string]any{"score": int64(1 << 40)}))
	require.NoError(t, err)
	assert.Equal(t, int64(1<<40), got)
}

// Each kind of bad input is rejected with its reason; none is a failure.
func TestAvroBadInput(t *testing.T) {
	reg, url := newFakeRegistry(t)
	in := reg.add(orderSchema)
	noScore := reg.add(`{"type":"record","name":"N","fields":[{"name":"customer","type":"string"}]}`)
	textScore := reg.add(`{"type":"record","name":"T","fields":[{"name":"score","type":"string"}]}`)
	hasTier := reg.add(`{"type":"record","name":"H","fields":[{"name":"tier","type":"int"}]}`)
	notRecord := reg.add(`"string"`)
	a := newTestAvro(t, url)
	valid := wire(t, in, orderSchema, order("o1"))
	assertRejects(t, a, []rejectCase{
		{"empty", false, nil, ReasonEmptyValue},
		{"JSON, not the wire format", false, []byte(`{"id":"o1"}`), ReasonNotWireFormat},
		{"a header and no more", false, []byte{0, 0, 0}, ReasonNotWireFormat},
		{"an ID the registry does not know", false, append([]byte{0, 0, 0, 0x30, 0x39}, valid[5:]...), ReasonUnknownSchema},
		{"a payload its schema cannot read", false, valid[:len(valid)-4], ReasonSchemaMismatch},
		{"bytes after the record", false, append(append([]byte{}, valid...), 1, 2), ReasonSchemaMismatch},
		{"an input schema that is not a record", false, wire(t, notRecord, `"string"`, "x"), ReasonSchemaMismatch},
		{"an input that has the output field", false, wire(t, hasTier, `{"type":"record","name":"H","fields":[{"name":"tier","type":"int"}]}`, map[string]any{"tier": 1}), ReasonSchemaMismatch},
		{"a score without the score field", true, wire(t, noScore, `{"type":"record","name":"N","fields":[{"name":"customer","type":"string"}]}`, map[string]any{"customer": "c"}), ReasonMissingField},
		{"a score of the wrong type", true, wire(t, textScore, `{"type":"record","name":"T","fields":[{"name":"score","type":"string"}]}`, map[string]any{"score": "7"}), ReasonWrongType},
		{"a score not in the wire format", true, []byte("7"), ReasonNotWireFormat},
	})
}

// A registry that cannot answer is a failure, never bad input: the record is read again later.
func TestAvroRegistryDownIsNotBadInput(t *testing.T) {
	reg, url := newFakeRegistry(t)
	in := reg.add(orderSchema)
	a := newTestAvro(t, url)
	reg.mu.Lock()
	reg.down = true
	reg.mu.Unlock()
	_, err := a.Enrich(nil, "c1", wire(t, in, orderSchema, order("o1")), 1)
	require.Error(t, err)
	assert.Empty(t, ReasonOf(err), "not bad input: %v", err)

	a2, err := NewAvro(AvroConfig{Registry: Registry{URL: "http://127.0.0.1:1"}, OutputSubject: "out-value"})
	require.NoError(t, err)
	_, err = a2.Score("c1", wire(t, in, orderSchema, order("o1")))
	require.Error(t, err)
	assert.Empty(t, ReasonOf(err), "an unreachable registry is not bad input: %v", err)

	reg.mu.Lock()
	reg.down = false
	reg.mu.Unlock()
	_, err = a.Enrich(nil, "c1", wire(t, in, orderSchema, order("o1")), 1)
	assert.NoError(t, err, "the same record once the registry is back")
}

// Whatever the bytes, Enrich either rejects them as bad input, with a reason, or writes an
// output that the output schema reads back as the input's record with the score.
func FuzzAvroEnrich(f *testing.F) {
	t := &testing.T{}
	reg, url := newFakeRegistry(t)
	in := reg.add(orderSchema)
	a := newTestAvro(t, url)
	valid := wire(t, in, orderSchema, order("o1"))
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add([]byte{0, 0, 0, 0, 1, 2})
	f.Add([]byte(`{"id":"o1"}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		out, err := a.Enrich(nil, "k", value, 5)
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
		reg.mu.Lock()
		outText := reg.schemas[id]
		reg.mu.Unlock()
		outSchema, err := parseAvro(outText)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := avro.Unmarshal(outSchema, body, &got); err != nil {
			t.Fatalf("the output does not read back: %v", err)
		}
		// Compared as bytes: a NaN double is not equal to itself as a value.
		if !bytes.Equal(body[:len(value)-5], value[5:]) || got["tier"] != int64(5) {
			t.Fatalf("output %x of input %x: not the input's record with the score", body, value)
		}
	})
}

func BenchmarkAvroEnrich(b *testing.B) {
	t := &testing.T{}
	reg, url := newFakeRegistry(t)
	in := reg.add(orderSchema)
	a := newTestAvro(t, url)
	value := wire(t, in, orderSchema, order("o1"))
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = a.Enrich(dst[:0], "c1", value, 7); err != nil {
			b.Fatal(err)
		}
	}
}

// The JSON format on a record of the same content, for comparison in one run.
func BenchmarkJSONMergeEnrich(b *testing.B) {
	value := []byte(`{"id":"o1","customer":"c1","amount":12.5,"note":"gift","lines":[{"sku":"a","qty":2}]}`)
	f := JSONMerge{KeyField: "customer", ScoreField: "tier"}
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = f.Enrich(dst[:0], "c1", value, 7); err != nil {
			b.Fatal(err)
		}
	}
}

// rejectCase is a bad record, a score record or an input, and the reason a format must reject
// it with.
type rejectCase struct {
	name   string
	score  bool
	value  []byte
	reason Reason
}

// assertRejects checks that f rejects each case's value with its reason, an input leaving dst
// as it was: bad input, never a failure.
func assertRejects(t *testing.T, f Format, cases []rejectCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.score {
				_, err = f.Score("k", tc.value)
			} else {
				var out []byte
				out, err = f.Enrich([]byte("d"), "k", tc.value, 1)
				assert.Equal(t, "d", string(out), "dst as it was")
			}
			assert.Equal(t, tc.reason, ReasonOf(err), "%v", err)
		})
	}
}
