package processor

import (
	"sync"

	"github.com/lovoo/goka/storage"
)

// DefaultCacheEntries is the read cache's default size per partition.
const DefaultCacheEntries = 100_000

// readCache keeps the latest values of up to max keys of one partition in memory, in front of
// its LevelDB store: every input reads its key's score, and under the benchmark LevelDB's
// lookups were a sixth of the processor's CPU. Writes go through to the store and update the
// cache under one lock, so a cached value is always the stored one; absent keys are cached
// too. When full, an arbitrary entry makes room. The cache starts once the partition is
// recovered: the records a restore writes bypass it.
type readCache struct {
	storage.Storage
	max int

	mu      sync.Mutex
	on      bool
	entries map[string][]byte // nil value: the key is absent
}

func newReadCache(st storage.Storage, max int) storage.Storage {
	if max <= 0 {
		return st
	}
	return &readCache{Storage: st, max: max, entries: make(map[string][]byte)}
}

func (c *readCache) Get(key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.entries[key]; ok && c.on {
		return v, nil
	}
	v, err := c.Storage.Get(key)
	if err != nil {
		return nil, err
	}
	c.put(key, v)
	return v, nil
}

func (c *readCache) Has(key string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.entries[key]; ok && c.on {
		return v != nil, nil
	}
	return c.Storage.Has(key)
}

func (c *readCache) Set(key string, value []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.Storage.Set(key, value); err != nil {
		delete(c.entries, key)
		return err
	}
	c.put(key, append([]byte(nil), value...))
	return nil
}

func (c *readCache) Delete(key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.Storage.Delete(key); err != nil {
		delete(c.entries, key)
		return err
	}
	c.put(key, nil)
	return nil
}

// MarkRecovered starts the cache.
func (c *readCache) MarkRecovered() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.Storage.MarkRecovered()
	c.on = err == nil
	clear(c.entries)
	return err
}

// put caches v for key; c.mu is held.
func (c *readCache) put(key string, v []byte) {
	if !c.on {
		return
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = v
}
