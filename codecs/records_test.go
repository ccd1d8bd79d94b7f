package codecs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendEnriched(t *testing.T) {
	for _, tc := range []struct {
		name, key, value string
		score            int64
		want             string
		reason           Reason
	}{
		{"the layout Encode writes is spliced", "k1", `{"key":"k1","message":"hi"}`, 42, `{"key":"k1","message":"hi","score":42}`, ""},
		{"no score yet", "k1", `{"key":"k1","message":"hi"}`, NoScore, `{"key":"k1","message":"hi","score":-1}`, ""},
		{"payload key absent takes record key", "k1", `{"message":"hi"}`, 3, `{"key":"k1","message":"hi","score":3}`, ""},
		{"other field order", "k1", `{"message":"hi","key":"k1"}`, 3, `{"key":"k1","message":"hi","score":3}`, ""},
		{"escapes are written as encoding/json writes them", "k1", `{"key":"k1","message":"a\"b<"}`, 3, `{"key":"k1","message":"a\"b\u003c","score":3}`, ""},
		{"key mismatch", "k1", `{"key":"k2","message":"hi"}`, 3, "", ReasonKeyMismatch},
		{"record key missing", "", `{"key":"k1","message":"hi"}`, 3, "", ReasonMissingKey},
		{"not json", "k1", `hello`, 3, "", ReasonInvalidJSON},
		{"too large", "k1", `{"key":"k1","message":"` + strings.Repeat("x", 64) + `"}`, 3, "", ReasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Limits{MaxValueBytes: 64}.AppendEnriched([]byte("k1"), tc.key, []byte(tc.value), tc.score)
			if tc.reason != "" {
				assert.Equal(t, tc.reason, ReasonOf(err), "%v", err)
				assert.Equal(t, "k1", string(got), "nothing appended on an error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "k1"+tc.want, string(got))
		})
	}
}

func TestDecodeInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    string
		value  string
		want   Input
		reason Reason
	}{
		{"full", "k1", `{"key":"k1","message":"hi"}`, Input{"k1", "hi"}, ""},
		{"payload key empty takes record key", "k1", `{"key":"","message":"hi"}`, Input{"k1", "hi"}, ""},
		{"payload key absent takes record key", "k1", `{"message":"hi"}`, Input{"k1", "hi"}, ""},
		{"unknown fields ignored", "k1", `{"message":"hi","extra":[1,2,{"x":null}]}`, Input{"k1", "hi"}, ""},
		{"empty message is a message", "k1", `{"message":""}`, Input{"k1", ""}, ""},
		{"surrounding whitespace", "k1", " \n{\"message\":\"hi\"}\n", Input{"k1", "hi"}, ""},
		{"key mismatch", "k1", `{"key":"k2","message":"hi"}`, Input{}, ReasonKeyMismatch},
		{"record key missing", "", `{"key":"k1","message":"hi"}`, Input{}, ReasonMissingKey},
		{"empty value", "k1", ``, Input{}, ReasonEmptyValue},
		{"not json", "k1", `hello`, Input{}, ReasonInvalidJSON},
		{"truncated json", "k1", `{"message":"hi"`, Input{}, ReasonInvalidJSON},
		{"json array", "k1", `[{"message":"hi"}]`, Input{}, ReasonInvalidJSON},
		{"json string", "k1", `"hi"`, Input{}, ReasonInvalidJSON},
		{"json null", "k1", `null`, Input{}, ReasonInvalidJSON},
		{"message wrong type", "k1", `{"message":42}`, Input{}, ReasonWrongType},
		{"key wrong type", "k1", `{"key":1,"message":"hi"}`, Input{}, ReasonWrongType},
		{"message missing", "k1", `{"key":"k1"}`, Input{}, ReasonMissingField},
		{"message null", "k1", `{"key":"k1","message":null}`, Input{}, ReasonMissingField},
		{"not utf-8", "k1", "{\"message\":\"\xff\xfe\"}", Input{}, ReasonInvalidUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeInput(tc.key, []byte(tc.value))
			if tc.reason != "" {
				require.Error(t, err)
				assert.Equal(t, tc.reason, ReasonOf(err), "error: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeScore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    string
		value  string
		want   Score
		reason Reason
	}{
		{"full", "k1", `{"key":"k1","score":7}`, Score{"k1", 7}, ""},
		{"key from record", "k1", `{"score":-3}`, Score{"k1", -3}, ""},
		{"zero is a score", "k1", `{"score":0}`, Score{"k1", 0}, ""},
		{"max int64", "k1", `{"score":9223372036854775807}`, Score{"k1", 9223372036854775807}, ""},
		{"score as string", "k1", `{"score":"7"}`, Score{}, ReasonWrongType},
		{"score overflows int64", "k1", `{"score":9223372036854775808}`, Score{}, ReasonWrongType},
		{"score is a fraction", "k1", `{"score":1.5}`, Score{}, ReasonWrongType},
		{"score exponent", "k1", `{"score":1e30}`, Score{}, ReasonWrongType},
		{"score missing", "k1", `{"key":"k1"}`, Score{}, ReasonMissingField},
		{"score null", "k1", `{"key":"k1","score":null}`, Score{}, ReasonMissingField},
		{"key mismatch", "k1", `{"key":"other","score":1}`, Score{}, ReasonKeyMismatch},
		{"record key missing", "", `{"score":1}`, Score{}, ReasonMissingKey},
		{"garbage", "k1", `{"score":`, Score{}, ReasonInvalidJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeScore(tc.key, []byte(tc.value))
			if tc.reason != "" {
				require.Error(t, err)
				assert.Equal(t, tc.reason, ReasonOf(err), "error: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLimits(t *testing.T) {
	l := Limits{MaxValueBytes: 64}
	_, err := l.DecodeInput("k", []byte(`{"message":"`+strings.Repeat("x", 100)+`"}`))
	assert.Equal(t, ReasonTooLarge, ReasonOf(err))
	got, err := l.DecodeInput("k", []byte(`{"message":"small"}`))
	require.NoError(t, err)
	assert.Equal(t, Input{"k", "small"}, got)
}

func TestReasonOfForeignError(t *testing.T) {
	assert.Equal(t, Reason(""), ReasonOf(assert.AnError))
	assert.Equal(t, Reason(""), ReasonOf(nil))
}

func TestCodecsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec interface {
			Encode(any) ([]byte, error)
			Decode([]byte) (any, error)
		}
		value, want any
	}{
		{"score", ScoreCodec{}, Score{"k", 42}, Score{"k", 42}},
		{"score pointer", ScoreCodec{}, &Score{"k", -1}, Score{"k", -1}},
		{"output", OutputCodec{}, Output{"k", "m", NoScore}, Output{"k", "m", -1}},
		{"output pointer", OutputCodec{}, &Output{"k", "m", 3}, Output{"k", "m", 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.codec.Encode(tc.value)
			require.NoError(t, err)
			got, err := tc.codec.Decode(b)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := ScoreCodec{}.Encode("not a score")
	assert.Error(t, err)
	_, err = OutputCodec{}.Encode(42)
	assert.Error(t, err)
	_, err = ScoreCodec{}.Decode([]byte("{"))
	assert.Error(t, err)
}

func TestOutputWireFormat(t *testing.T) {
	b, err := Encode(Output{Key: "k", Message: "m", Score: -1})
	require.NoError(t, err)
	assert.JSONEq(t, `{"key":"k","message":"m","score":-1}`, string(b))
}
