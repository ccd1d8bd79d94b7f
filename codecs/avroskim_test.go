package codecs

import (
	"testing"

	"github.com/hamba/avro/v2"
)

// allTypes has a field of every Avro type, logical types among them, and a named type used
// twice (a reference).
const allTypes = `{"type":"record","name":"All","fields":[
 {"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"l","type":"long"},
 {"name":"f","type":"float"},{"name":"d","type":"double"},{"name":"s","type":"string"},{"name":"y","type":"bytes"},
 {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
 {"name":"x","type":{"type":"fixed","name":"F","size":3}},
 {"name":"a","type":{"type":"array","items":["null","int"]}},
 {"name":"m","type":{"type":"map","values":"E"}},
 {"name":"u","type":["null","string",{"type":"record","name":"N","fields":[{"name":"n","type":"long"}]}]},
 {"name":"r","type":["null","N"]},
 {"name":"dt","type":{"type":"int","logicalType":"date"}},
 {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}
]}`

// fullRead is what skimAvro stands in for: hamba reading the value into Go values. It reports
// whether the read succeeded and whether bytes were left after it.
func fullRead(api avro.API, schema avro.Schema, b []byte) (ok, left bool) {
	defer func() {
		if recover() != nil {
			ok, left = false, false
		}
	}()
	r := avro.NewReader(nil, 0, avro.WithReaderConfig(api)).Reset(b)
	var v any
	r.ReadVal(schema, &v)
	if r.Error != nil {
		return false, false
	}
	r.Peek()
	return true, r.Error == nil
}

func skimRead(schema avro.Schema, bound int, b []byte) (ok, left bool) {
	r := avro.NewReader(nil, 0).Reset(b)
	skimAvro(r, schema, bound)
	if r.Error != nil {
		return false, false
	}
	r.Peek()
	return true, r.Error == nil
}

// skimAvro accepts exactly the values hamba reads in full, and stops where it stops.
func FuzzAvroSkimMatchesDecode(f *testing.F) {
	const bound = 64 // small, so the fuzzer reaches the count and length bounds
	schema, err := parseAvro(allTypes)
	if err != nil {
		f.Fatal(err)
	}
	api := avro.Config{MaxByteSliceSize: bound, MaxSliceAllocSize: bound}.Freeze()
	valid, err := avro.Marshal(schema, map[string]any{"b": true, "i": 3, "l": int64(-4), "f": float32(1.5), "d": 2.5,
		"s": "héllo", "y": []byte{1, 2}, "e": "B", "x": [3]byte{7, 8, 9}, "a": []any{nil, 5},
		"m": map[string]any{"k": "C"}, "u": map[string]any{"N": map[string]any{"n": int64(1)}}, "r": nil,
		"dt": 19000, "ts": int64(1700000000000), "dec": []byte{0x01, 0x00}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(append(append([]byte{}, valid...), 0))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})
	f.Fuzz(func(t *testing.T, b []byte) {
		fullOK, fullLeft := fullRead(api, schema, b)
		skimOK, skimLeft := skimRead(schema, bound, b)
		if fullOK != skimOK || fullLeft != skimLeft {
			t.Fatalf("value %x: a full read accepts %v (bytes left %v), the skim %v (bytes left %v)", b, fullOK, fullLeft, skimOK, skimLeft)
		}
	})
}
