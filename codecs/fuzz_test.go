package codecs

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// The fuzz targets check that decoding never panics, that every error carries a Reason, and
// that whatever decodes survives an encode/decode round trip unchanged.

func FuzzDecodeInput(f *testing.F) {
	for _, s := range []string{`{"key":"k","message":"m"}`, `{"message":""}`, `{"key":1}`, `[]`, "\xff", ``, `{"message":"\u0000"}`} {
		f.Add("k", []byte(s))
	}
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		in, err := DecodeInput(key, value)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		if in.Key != key || key == "" {
			t.Fatalf("decoded key %q from record key %q", in.Key, key)
		}
		b, err := Encode(in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeInput(key, b)
		if utf8.ValidString(key) && (err != nil || again != in) {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", in, b, again, err)
		}
	})
}

func FuzzDecodeScore(f *testing.F) {
	for _, s := range []string{`{"key":"k","score":1}`, `{"score":-9223372036854775808}`, `{"score":"7"}`, `{"score":1e3}`, `{`, ``} {
		f.Add("k", []byte(s))
	}
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		s, err := DecodeScore(key, value)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		b, err := ScoreCodec{}.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ScoreCodec{}.Decode(b)
		if utf8.ValidString(key) && (err != nil || again != s) {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", s, b, again, err)
		}
	})
}

// FuzzFastPaths checks the fast decoders against encoding/json: whatever they accept, the
// general path decodes to the same fields.
func FuzzFastPaths(f *testing.F) {
	for _, s := range []string{`{"key":"k","message":"m"}`, `{"key":"k","score":-0}`, `{"key":"k","score":01}`,
		`{"key":"k","score":9223372036854775808}`, `{"key":"\u00e9","message":"m"}`, `{"key":"k","message":"m","key":"j"}`,
		`{"key":"k","message":"m","score":-1}`, `{"key":"k","message":"m","score":1e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		if !utf8.Valid(value) {
			return // rejected before either path
		}
		if fast, ok := fastInput(value); ok {
			var slow wireInput
			if err := unmarshal(value, &slow); err != nil || slow.Key == nil || slow.Message == nil ||
				*slow.Key != *fast.Key || *slow.Message != *fast.Message {
				t.Fatalf("%s: fast %q %q, general %+v %v", value, *fast.Key, *fast.Message, slow, err)
			}
		}
		if fast, ok := fastOutput(value); ok {
			var slow Output
			if err := json.Unmarshal(value, &slow); err != nil || slow != fast {
				t.Fatalf("%s: fast %+v, encoding/json %+v %v", value, fast, slow, err)
			}
		}
		if fast, ok := fastScore(value); ok {
			var slow wireScore
			if err := unmarshal(value, &slow); err != nil || slow.Key == nil || slow.Score == nil ||
				*slow.Key != *fast.Key || *slow.Score != *fast.Score {
				t.Fatalf("%s: fast %q %d, general %+v %v", value, *fast.Key, *fast.Score, slow, err)
			}
		}
	})
}

// FuzzAppendEnriched checks that AppendEnriched, spliced or not, writes what DecodeInput then
// Encode write, and fails with the same reason where DecodeInput fails.
func FuzzAppendEnriched(f *testing.F) {
	for _, s := range []string{`{"key":"k","message":"m"}`, `{"key":"j","message":"m"}`, `{"key":"","message":"m"}`,
		`{"message":"m"}`, `{"key":"k","message":"<b>"}`, `{"key":"k","message":"m"} `, `{"key":"k","message":"m","x":1}`, ``} {
		f.Add("k", []byte(s), int64(7))
	}
	f.Fuzz(func(t *testing.T, key string, value []byte, score int64) {
		limits := Limits{MaxValueBytes: 64}
		prefix := []byte("prefix")
		got, err := limits.AppendEnriched(prefix, key, value, score)
		in, want := limits.DecodeInput(key, value)
		if want != nil {
			if err == nil || ReasonOf(err) != ReasonOf(want) {
				t.Fatalf("%q %q: error %v, DecodeInput's %v", key, value, err, want)
			}
			if string(got) != "prefix" {
				t.Fatalf("%q %q: appended %q on an error", key, value, got)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q %q: %v, DecodeInput decoded %+v", key, value, err, in)
		}
		enc, _ := Encode(Output{Key: in.Key, Message: in.Message, Score: score})
		if !bytes.Equal(got, append([]byte("prefix"), enc...)) {
			t.Fatalf("%q %q: appended %s, Encode wrote %s", key, value, got, enc)
		}
	})
}

// FuzzEncode checks that Encode writes exactly what json.Marshal writes.
func FuzzEncode(f *testing.F) {
	f.Add("k", "m", int64(1))
	f.Add("<&>", "\u2028\x00\"\\é", int64(-1))
	f.Add("\xff", "", int64(-9223372036854775808))
	f.Fuzz(func(t *testing.T, key, message string, score int64) {
		for _, v := range []any{Output{key, message, score}, Score{key, score}, Input{key, message}} {
			var got []byte
			switch v := v.(type) {
			case Output:
				got, _ = Encode(v)
			case Score:
				got, _ = Encode(v)
			case Input:
				got, _ = Encode(v)
			}
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Encode(%#v) = %s, json.Marshal = %s", v, got, want)
			}
		}
	})
}
