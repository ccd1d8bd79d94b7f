package codecs

import (
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
