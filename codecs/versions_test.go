package codecs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersions(t *testing.T) {
	var v Versions
	v.Add(3000, 30)
	v.Add(1000, 10) // out of timestamp order
	v.Add(2000, 20)
	v.Add(2000, 21) // same timestamp: the later record wins
	assert.Equal(t, []Version{{1000, 10}, {2000, 21}, {3000, 30}}, v.List)
	for _, tc := range []struct {
		at    int64
		score int64
		found bool
	}{{999, 0, false}, {1000, 10, true}, {1500, 10, true}, {2000, 21, true}, {5000, 30, true}} {
		s, ok := v.ScoreAt(tc.at)
		assert.Equal(t, tc.found, ok, "at %d", tc.at)
		assert.Equal(t, tc.score, s, "at %d", tc.at)
	}
	v.Add(10_000, 100)
	v.Prune(7500 * time.Millisecond) // cutoff 2500: 2000 is the score at the window's start
	assert.Equal(t, []Version{{2000, 21}, {3000, 30}, {10_000, 100}}, v.List)
	assert.True(t, v.Pruned)
	v.Prune(time.Hour)
	assert.Len(t, v.List, 3, "nothing falls outside a longer window")
}

func TestVersionsKeepAtMostMaxVersions(t *testing.T) {
	// Timestamps of 2026 and scores of 13 digits: a record as large as a real history makes.
	const start, score = int64(1_767_225_600_000), int64(-1_234_567_890_123)
	var v Versions
	for i := int64(0); i < MaxVersions; i++ {
		v.Add(start+i, score)
	}
	assert.False(t, v.Pruned, "a history of exactly MaxVersions is whole")
	v.Add(start+MaxVersions, 7)
	require.Len(t, v.List, MaxVersions)
	assert.Equal(t, Version{start + 1, score}, v.List[0], "the oldest version went")
	assert.Equal(t, Version{start + MaxVersions, 7}, v.Latest())
	assert.True(t, v.Pruned)
	b, err := VersionsCodec{}.Encode(v)
	require.NoError(t, err)
	assert.Less(t, len(b), 1_000_000-1024, "a full history fits Kafka's default message limit")
}

func TestVersionsCodec(t *testing.T) {
	v := Versions{Key: "k", List: []Version{{1000, 10}, {2000, 20}}, Pruned: true}
	b, err := VersionsCodec{}.Encode(v)
	require.NoError(t, err)
	assert.JSONEq(t, `{"key":"k","score":20,"versions":[[1000,10],[2000,20]],"pruned":true}`, string(b))
	back, err := VersionsCodec{}.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, v, back)

	s, err := ScoreCodec{}.Decode(b)
	require.NoError(t, err)
	assert.Equal(t, Score{Key: "k", Score: 20}, s, "a Score reader sees the latest score")

	old, err := VersionsCodec{}.Decode([]byte(`{"key":"k","score":7}`))
	require.NoError(t, err)
	assert.Equal(t, Versions{Key: "k", List: []Version{{BeforeAll, 7}}}, old, "a latest-score table value")

	for _, bad := range []string{`{"key":"k"}`, `{"key":"k","versions":[[2,1],[1,1]]}`, `[`} {
		_, err := VersionsCodec{}.Decode([]byte(bad))
		assert.Error(t, err, bad)
	}
	_, err = VersionsCodec{}.Encode(Versions{Key: "k"})
	assert.Error(t, err)
}

// FuzzVersionsCodec: decoding never panics, and what decodes survives a round trip.
func FuzzVersionsCodec(f *testing.F) {
	for _, s := range []string{`{"key":"k","score":1,"versions":[[1,1],[2,2]]}`, `{"key":"k","score":3}`, `{"versions":[[5,5]],"pruned":true}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := VersionsCodec{}.Decode(data)
		if err != nil {
			return
		}
		b, err := VersionsCodec{}.Encode(v)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", v, err)
		}
		again, err := VersionsCodec{}.Decode(b)
		if err != nil {
			t.Fatalf("round trip: %s: %v", b, err)
		}
		assert.Equal(t, v, again)
	})
}
