package processor

import (
	"strconv"
	"sync"
	"testing"

	"github.com/lovoo/goka/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func newCountingCache(t *testing.T, max int) (storage.Storage, *countingStore) {
	t.Helper()
	mem := storage.NewMemory()
	under := &countingStore{Storage: mem}
	c := newReadCache(under, max)
	require.NoError(t, c.Open())
	return c, under
}

func TestReadCache(t *testing.T) {
	for _, tc := range []struct {
		name      string
		recovered bool
		ops       func(t *testing.T, c storage.Storage)
		key       string
		want      string // "" means absent
		reads     int    // reads that reached the store, for the final two Gets of key
	}{
		{"not used before recovery", false, func(t *testing.T, c storage.Storage) {
			require.NoError(t, c.Set("a", []byte("1")))
		}, "a", "1", 2},
		{"a written value is served from memory", true, func(t *testing.T, c storage.Storage) {
			require.NoError(t, c.Set("a", []byte("1")))
		}, "a", "1", 0},
		{"an overwrite replaces the cached value", true, func(t *testing.T, c storage.Storage) {
			require.NoError(t, c.Set("a", []byte("1")))
			require.NoError(t, c.Set("a", []byte("2")))
		}, "a", "2", 0},
		{"a delete is cached as absent", true, func(t *testing.T, c storage.Storage) {
			require.NoError(t, c.Set("a", []byte("1")))
			require.NoError(t, c.Delete("a"))
		}, "a", "", 0},
		{"an absent key is read once", true, func(t *testing.T, c storage.Storage) {}, "nope", "", 1},
		{"a full cache evicts and reads again", true, func(t *testing.T, c storage.Storage) {
			for i := range 10 {
				require.NoError(t, c.Set("k"+strconv.Itoa(i), []byte(strconv.Itoa(i))))
			}
		}, "k3", "3", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, under := newCountingCache(t, 4)
			if tc.recovered {
				require.NoError(t, c.MarkRecovered())
			}
			tc.ops(t, c)
			before := under.reads
			for range 2 {
				v, err := c.Get(tc.key)
				require.NoError(t, err)
				assert.Equal(t, tc.want, string(v))
				has, err := c.Has(tc.key)
				require.NoError(t, err)
				assert.Equal(t, tc.want != "", has)
			}
			if tc.reads >= 0 {
				assert.Equal(t, tc.reads, under.reads-before)
			} else {
				assert.LessOrEqual(t, under.reads-before, 1, "an evicted key is read at most once, then cached")
			}
			if rc, ok := c.(*readCache); ok {
				assert.LessOrEqual(t, len(rc.entries), 4, "the cache stays within its size")
			}
		})
	}
}

func TestReadCacheOff(t *testing.T) {
	mem := storage.NewMemory()
	assert.Same(t, mem, newReadCache(mem, 0), "size 0: the store itself")
}
