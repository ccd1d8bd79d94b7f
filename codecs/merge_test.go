package codecs

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONMergeEnrich(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format JSONMerge
		key    string
		in     string
		score  int64
		want   string
		reason Reason // "" for none
	}{
		{"fields and nested values kept, score added last", JSONMerge{}, "o1",
			`{"id":"o1","customer":{"name":"Ann","tags":["a","b"]},"amount":12.50}`, 7,
			`{"id":"o1","customer":{"name":"Ann","tags":["a","b"]},"amount":12.50,"score":7}`, ""},
		{"no score yet", JSONMerge{}, "o1", `{"id":"o1"}`, NoScore, `{"id":"o1","score":-1}`, ""},
		{"an empty object", JSONMerge{}, "o1", `{}`, 3, `{"score":3}`, ""},
		{"a score field in the input is replaced where it stood", JSONMerge{}, "o1",
			`{"score":"old","id":"o1"}`, 9, `{"score":9,"id":"o1"}`, ""},
		{"named score field", JSONMerge{ScoreField: "tier"}, "c1", `{"customer":"c1"}`, 2, `{"customer":"c1","tier":2}`, ""},
		{"whitespace between members is normalised", JSONMerge{}, "k", "{ \"a\" : 1 ,\n \"b\":[1, 2] }", 1, `{"a":1,"b":[1, 2],"score":1}`, ""},
		{"escaped names stay valid JSON", JSONMerge{}, "k", `{"a\"b":1,"<x>":2}`, 1, `{"a\"b":1,"\u003cx\u003e":2,"score":1}`, ""},
		{"key field equal to the record key", JSONMerge{KeyField: "id"}, "o1", `{"id":"o1"}`, 1, `{"id":"o1","score":1}`, ""},
		{"key field differs", JSONMerge{KeyField: "id"}, "o1", `{"id":"o2"}`, 1, "", ReasonKeyMismatch},
		{"not an object", JSONMerge{}, "k", `[1,2]`, 1, "", ReasonInvalidJSON},
		{"not JSON", JSONMerge{}, "k", `{"a":`, 1, "", ReasonInvalidJSON},
		{"trailing data", JSONMerge{}, "k", `{"a":1} {}`, 1, "", ReasonInvalidJSON},
		{"too large", JSONMerge{Limits: Limits{MaxValueBytes: 5}}, "k", `{"a":12345}`, 1, "", ReasonTooLarge},
		{"no record key", JSONMerge{}, "", `{"a":1}`, 1, "", ReasonMissingKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.format.Enrich([]byte("prefix"), tc.key, []byte(tc.in), tc.score)
			if tc.reason != "" {
				require.Error(t, err)
				assert.Equal(t, tc.reason, ReasonOf(err))
				assert.Equal(t, "prefix", string(got), "dst as it was")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "prefix"+tc.want, string(got))
			assert.True(t, json.Valid(got[len("prefix"):]))
		})
	}
}

func TestJSONMergeScore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format JSONMerge
		in     string
		want   int64
		reason Reason
	}{
		{"an int", JSONMerge{}, `{"key":"k","score":42,"source":{"model":"v3"}}`, 42, ""},
		{"a long", JSONMerge{}, `{"score":9007199254740993}`, 9007199254740993, ""},
		{"negative", JSONMerge{}, `{"score":-5}`, -5, ""},
		{"named field", JSONMerge{ScoreField: "tier"}, `{"tier":3}`, 3, ""},
		{"missing", JSONMerge{}, `{"key":"k"}`, 0, ReasonMissingField},
		{"null", JSONMerge{}, `{"score":null}`, 0, ReasonMissingField},
		{"a fraction", JSONMerge{}, `{"score":1.5}`, 0, ReasonWrongType},
		{"a string", JSONMerge{}, `{"score":"1"}`, 0, ReasonWrongType},
		{"past int64", JSONMerge{}, `{"score":9223372036854775808}`, 0, ReasonWrongType},
		{"key mismatch", JSONMerge{}, `{"key":"other","score":1}`, 0, ReasonKeyMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.format.Score("k", []byte(tc.in))
			if tc.reason != "" {
				require.Error(t, err)
				assert.Equal(t, tc.reason, ReasonOf(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzJSONMerge: an input accepted as an object comes out as valid JSON holding every one of its
// top-level fields with the same value, and the score; nothing panics.
func FuzzJSONMerge(f *testing.F) {
	for _, s := range []string{`{"id":"o1","amount":1.5}`, `{}`, `{"score":1,"a":[{}]}`, `{"a\u0000":"\ud83d"}`, `[]`, `{"a":1`} {
		f.Add(s, int64(3))
	}
	f.Fuzz(func(t *testing.T, in string, score int64) {
		m := JSONMerge{}
		out, err := m.Enrich(nil, "k", []byte(in), score)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("%q: an error that is not a *DecodeError: %v", in, err)
			}
			return
		}
		var before, after map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &before); err != nil {
			t.Fatalf("%q was accepted but is not an object: %v", in, err)
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("%q became %q, not valid JSON: %v", in, out, err)
		}
		for k, v := range before {
			if k == "score" {
				continue
			}
			var a, b any
			_ = json.Unmarshal(v, &a)
			_ = json.Unmarshal(after[k], &b)
			if !jsonEqual(a, b) {
				t.Fatalf("%q: field %q was %s, became %s", in, k, v, after[k])
			}
		}
		got, err := m.Score("k", out)
		if err != nil || got != score {
			t.Fatalf("%q: the output's score reads back as %d, %v; want %d", out, got, err, score)
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
