package store

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lovoo/goka/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/codecs"
)

// countingStore counts the reads that reach the store under the cache.
type countingStore struct {
	storage.Storage
	mu    sync.Mutex
	reads int
}

func (s *countingStore) Get(key string) ([]byte, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Storage.Get(key)
}

func newCountingCache(t *testing.T, max int) (*Cache, *countingStore) {
	t.Helper()
	under := &countingStore{Storage: storage.NewMemory()}
	c := NewCache(under, max)
	require.NoError(t, c.Open())
	return c, under
}

func scoreJSON(key string, score int) []byte {
	b, _ := codecs.Encode(codecs.Score{Key: key, Score: int64(score)})
	return b
}

// none is a want of TestScoreCache: the key has no score.
const none = math.MinInt64

func TestScoreCache(t *testing.T) {
	for _, tc := range []struct {
		name      string
		max       int
		recovered bool
		ops       func(t *testing.T, c *Cache)
		key       string
		want      int64 // none: no score
		reads     int   // reads that reached the store, for two lookups of key; -1: at most one
	}{
		{"not used before recovery", 4, false, func(t *testing.T, c *Cache) {
			require.NoError(t, c.Set("a", scoreJSON("a", 1)))
		}, "a", 1, 2},
		{"a written score is served from memory", 4, true, func(t *testing.T, c *Cache) {
			require.NoError(t, c.Set("a", scoreJSON("a", 1)))
		}, "a", 1, 0},
		{"an overwrite replaces the cached score", 4, true, func(t *testing.T, c *Cache) {
			require.NoError(t, c.Set("a", scoreJSON("a", 1)))
			require.NoError(t, c.Set("a", scoreJSON("a", -7)))
		}, "a", -7, 0},
		{"a delete is cached as absent", 4, true, func(t *testing.T, c *Cache) {
			require.NoError(t, c.Set("a", scoreJSON("a", 1)))
			require.NoError(t, c.Delete("a"))
		}, "a", none, 0},
		{"an absent key is read once", 4, true, func(t *testing.T, c *Cache) {}, "nope", none, 1},
		{"a stored key is read once", 4, true, func(t *testing.T, c *Cache) {
			require.NoError(t, c.Storage.Set("a", scoreJSON("a", 3)))
		}, "a", 3, 1},
		{"a full cache evicts and reads again", 4, true, func(t *testing.T, c *Cache) {
			for i := range 10 {
				require.NoError(t, c.Set("k"+strconv.Itoa(i), scoreJSON("k"+strconv.Itoa(i), i)))
			}
		}, "k3", 3, -1},
		{"size 0 caches nothing", 0, true, func(t *testing.T, c *Cache) {
			require.NoError(t, c.Set("a", scoreJSON("a", 1)))
		}, "a", 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, under := newCountingCache(t, tc.max)
			if tc.recovered {
				require.NoError(t, c.MarkRecovered())
			}
			tc.ops(t, c)
			before := under.reads
			for range 2 {
				score, found, err := c.Score(tc.key)
				require.NoError(t, err)
				assert.Equal(t, tc.want != none, found)
				if found {
					assert.Equal(t, tc.want, score)
				}
			}
			if tc.reads >= 0 {
				assert.Equal(t, tc.reads, under.reads-before)
			} else {
				assert.LessOrEqual(t, under.reads-before, 1, "an evicted key is read at most once, then cached")
			}
			assert.LessOrEqual(t, c.len(), tc.max, "the cache stays within its size")
			v, err := c.Get(tc.key)
			require.NoError(t, err)
			assert.Equal(t, tc.want != none, v != nil, "goka's reads see the store")
		})
	}
}

func TestScoreCacheReportsAValueThatIsNoScore(t *testing.T) {
	c, _ := newCountingCache(t, 4)
	require.NoError(t, c.MarkRecovered())
	require.NoError(t, c.Set("a", []byte("not json")))
	_, _, err := c.Score("a")
	assert.ErrorContains(t, err, `table value of key "a"`)
}

func TestScoreCaches(t *testing.T) {
	var none *Caches
	assert.Nil(t, none.Get(0), "no caches: scores go through goka")

	s := &Caches{}
	a, _ := newCountingCache(t, 4)
	b, _ := newCountingCache(t, 4)
	s.Add(0, a)
	s.Add(1, b)
	assert.Same(t, a, s.Get(0))
	assert.Same(t, b, s.Get(1))
	assert.Nil(t, s.Get(2))

	// A store reopened for partition 0 replaces the old one; the old one closing late leaves the
	// new one in place.
	a2, _ := newCountingCache(t, 4)
	s.Add(0, a2)
	require.NoError(t, a.Close())
	assert.Same(t, a2, s.Get(0))
	require.NoError(t, a2.Close())
	assert.Nil(t, s.Get(0))
	assert.Same(t, b, s.Get(1))
}

// Keys up to shortKeyMax bytes are held inline and longer ones as strings; either way each key
// keeps its own score, and keys that differ only in length or a trailing zero byte stay apart.
func TestScoreCacheKeyLengths(t *testing.T) {
	keys := []string{"", "a", "a\x00", strings.Repeat("k", shortKeyMax), strings.Repeat("k", shortKeyMax+1),
		strings.Repeat("k", shortKeyMax) + "\x00", strings.Repeat("x", 200)}
	c, under := newCountingCache(t, len(keys))
	require.NoError(t, c.MarkRecovered())
	for i, k := range keys {
		require.NoError(t, c.Set(k, scoreJSON(k, i)))
	}
	assert.Equal(t, len(keys), c.len())
	for i, k := range keys {
		score, found, err := c.Score(k)
		require.NoError(t, err)
		assert.True(t, found, "%q", k)
		assert.Equal(t, int64(i), score, "%q", k)
	}
	assert.Zero(t, under.reads, "every key is served from memory")

	require.NoError(t, c.Delete(keys[4]))
	_, found, err := c.Score(keys[4])
	require.NoError(t, err)
	assert.False(t, found, "a deleted long key")
	score, _, _ := c.Score(keys[3])
	assert.Equal(t, int64(3), score, "its short neighbour keeps its score")
}

// A history cache (the as-of join) keeps each key's latest version and the time it is valid
// from, whether written through it or read from the store.
func TestHistoryCache(t *testing.T) {
	versions := func(list ...codecs.Version) []byte {
		b, err := codecs.VersionsCodec{}.Encode(codecs.Versions{Key: "k", List: list})
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		name      string
		write     func(c *Cache) error
		want      int64
		wantSince int64
		found     bool
		reads     int // reads that reached the store, for two lookups
	}{
		{"written through", func(c *Cache) error {
			return c.Set("k", versions(codecs.Version{At: 10, Score: 1}, codecs.Version{At: 30, Score: 3}))
		}, 3, 30, true, 0},
		{"read from the store once", func(c *Cache) error {
			return c.Storage.Set("k", versions(codecs.Version{At: 10, Score: 1}, codecs.Version{At: 20, Score: 2}))
		}, 2, 20, true, 1},
		{"a version written late is not the latest", func(c *Cache) error {
			return c.Set("k", versions(codecs.Version{At: 10, Score: 1}, codecs.Version{At: 40, Score: 4}))
		}, 4, 40, true, 0},
		{"a score valid since the beginning", func(c *Cache) error {
			return c.Set("k", versions(codecs.Version{At: codecs.BeforeAll, Score: 9}))
		}, 9, codecs.BeforeAll, true, 0},
		{"no score", func(c *Cache) error { return nil }, 0, 0, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			under := &countingStore{Storage: storage.NewMemory()}
			c := NewHistoryCache(under, 4)
			require.NoError(t, c.Open())
			require.NoError(t, c.MarkRecovered())
			require.NoError(t, tc.write(c))
			for range 2 {
				score, since, found, err := c.Latest("k")
				require.NoError(t, err)
				assert.Equal(t, tc.found, found)
				if tc.found {
					assert.Equal(t, tc.want, score)
					assert.Equal(t, tc.wantSince, since)
				}
			}
			assert.Equal(t, tc.reads, under.reads)
		})
	}
}
