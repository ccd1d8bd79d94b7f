package store

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/lovoo/goka/storage"

	"github.com/enricher/enricher/codecs"
)

// DefaultCacheEntries is the score cache's default size per partition. An entry costs 94 to 151
// bytes (the map doubles as it grows), so a full cache is up to about 36 MiB; a partition with
// fewer keys holds only those. A score the cache misses is a LevelDB read, which costs far
// more than a hit: the default holds every key of the benchmark's largest run (docs/performance.md).
const DefaultCacheEntries = 250_000

// Cache keeps the latest scores of up to max keys of one table partition in memory,
// decoded, in front of its LevelDB store, and answers the score lookup every input makes.
// Reading a score through goka's table (ctx.Value) meant a LevelDB read or a cached copy of the
// stored JSON, then decoding it: a quarter of the processor's CPU under the benchmark, most of
// it waiting on memory. Here a hit is one map lookup that yields the number.
//
// Keys of up to shortKeyMax bytes, nearly all keys, are held inline in the map's slots: a
// lookup reads no memory outside the map, and the map holds no pointers, so the garbage
// collector never scans it (with a million cached strings, each collection had scanned them
// all while the processor waited). Longer keys go to a map of strings.
//
// Writes go through to the store and update the cache under one lock, so a cached score is
// always the stored one; absent keys are cached too. When full, an arbitrary entry makes room.
// The cache starts once the partition is recovered: the records a restore writes bypass it.
// goka's own reads (Get, Has) go to the store.
type Cache struct {
	storage.Storage
	max int
	// closed is called once the store is closed (the cache leaves the Caches).
	closed func()

	// history says the table holds codecs.Versions (the as-of join): an entry is the latest
	// version and the time it is valid from.
	history bool

	mu    sync.Mutex
	on    bool
	short map[shortKey]cachedScore
	long  map[string]cachedScore
}

// shortKeyMax is the longest key a shortKey holds.
const shortKeyMax = 39

// shortKey is a key of up to shortKeyMax bytes, held by value.
type shortKey struct {
	n uint8
	b [shortKeyMax]byte
}

// toShort returns key as a shortKey, or false for a key longer than shortKeyMax.
func toShort(key string) (shortKey, bool) {
	var k shortKey
	if len(key) > shortKeyMax {
		return k, false
	}
	k.n = uint8(len(key))
	copy(k.b[:], key)
	return k, true
}

// cachedScore is a key's latest score and the time it is valid from, or its absence.
type cachedScore struct {
	score int64
	// since is the latest version's timestamp in Unix milliseconds (codecs.BeforeAll in a
	// table of latest scores).
	since   int64
	present bool
}

// NewCache returns a cache of up to max scores in front of st, a table of codecs.Score values
// (the latest join); it caches once st is recovered.
func NewCache(st storage.Storage, max int) *Cache {
	return &Cache{Storage: st, max: max, short: make(map[shortKey]cachedScore), long: make(map[string]cachedScore)}
}

// NewHistoryCache returns a cache of up to max keys' latest versions in front of st, a table of
// codecs.Versions values (the as-of join). Most inputs are stamped after their key's latest
// score and take it from the cache; only an older input reads the key's history from the store.
func NewHistoryCache(st storage.Storage, max int) *Cache {
	c := NewCache(st, max)
	c.history = true
	return c
}

// Score returns key's score; found is false for a key that has none.
func (c *Cache) Score(key string) (score int64, found bool, err error) {
	e, err := c.get(key)
	return e.score, e.present, err
}

// Latest returns key's latest score and the timestamp it is valid from, in Unix milliseconds:
// the latest version's in a history cache, codecs.BeforeAll otherwise. found is false for a key
// that has no score.
func (c *Cache) Latest(key string) (score, since int64, found bool, err error) {
	e, err := c.get(key)
	return e.score, e.since, e.present, err
}

func (c *Cache) get(key string) (cachedScore, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.lookup(key); ok {
		return e, nil
	}
	v, err := c.Storage.Get(key)
	if err != nil {
		return cachedScore{}, err
	}
	e, err := c.decode(v)
	if err != nil {
		return cachedScore{}, fmt.Errorf("table value of key %q: %w", key, err)
	}
	c.put(key, e)
	return e, nil
}

func (c *Cache) Set(key string, value []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.Storage.Set(key, value)
	e, derr := c.decode(value)
	if err != nil || derr != nil {
		// Score reads the store again, and reports a value it cannot decode.
		c.forget(key)
		return err
	}
	c.put(key, e)
	return nil
}

func (c *Cache) Delete(key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.Storage.Delete(key); err != nil {
		c.forget(key)
		return err
	}
	c.put(key, cachedScore{})
	return nil
}

// MarkRecovered starts the cache.
func (c *Cache) MarkRecovered() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.Storage.MarkRecovered()
	c.on = err == nil
	clear(c.short)
	clear(c.long)
	return err
}

// Close closes the store; the cache is not used after.
func (c *Cache) Close() error {
	c.detach()
	return c.Storage.Close()
}

// detach takes the cache out of the callbacks' sight: its store is closing, or kept open
// without it (keptStores).
func (c *Cache) detach() {
	if c.closed != nil {
		c.closed()
	}
}

// len is the number of cached keys; c.mu is held.
func (c *Cache) len() int { return len(c.short) + len(c.long) }

// lookup returns the cached entry of key; c.mu is held.
func (c *Cache) lookup(key string) (cachedScore, bool) {
	if !c.on {
		return cachedScore{}, false
	}
	var e cachedScore
	var ok bool
	if k, short := toShort(key); short {
		e, ok = c.short[k]
	} else {
		e, ok = c.long[key]
	}
	return e, ok
}

// put caches e for key; c.mu is held.
func (c *Cache) put(key string, e cachedScore) {
	if !c.on || c.max <= 0 {
		return
	}
	if _, ok := c.lookup(key); !ok && c.len() >= c.max {
		c.evictOne()
	}
	if k, short := toShort(key); short {
		c.short[k] = e
	} else {
		c.long[key] = e
	}
}

// forget drops key's entry; c.mu is held.
func (c *Cache) forget(key string) {
	if k, short := toShort(key); short {
		delete(c.short, k)
	} else {
		delete(c.long, key)
	}
}

// evictOne drops an arbitrary entry; c.mu is held.
func (c *Cache) evictOne() {
	for k := range c.short {
		delete(c.short, k)
		return
	}
	for k := range c.long {
		delete(c.long, k)
		return
	}
}

// decode decodes a stored table value; nil is a key without a score.
func (c *Cache) decode(v []byte) (cachedScore, error) {
	if v == nil {
		return cachedScore{}, nil
	}
	if c.history {
		d, err := codecs.VersionsCodec{}.Decode(v)
		if err != nil {
			return cachedScore{}, err
		}
		latest := d.(codecs.Versions).Latest()
		return cachedScore{score: latest.Score, since: latest.At, present: true}, nil
	}
	return decodeScore(v)
}

// decodeScore decodes a stored table value as a codecs.Score: the latest score of a
// codecs.Versions value too, whose encoding carries it; nil is a key without a score.
func decodeScore(v []byte) (cachedScore, error) {
	if v == nil {
		return cachedScore{}, nil
	}
	s, err := codecs.ScoreCodec{}.Decode(v)
	if err != nil {
		return cachedScore{}, err
	}
	return cachedScore{score: s.(codecs.Score).Score, since: codecs.BeforeAll, present: true}, nil
}

// Caches holds the score cache of each table partition whose store is open, for the
// callbacks to look scores up in. It is read for every input and changed on a rebalance only, so
// readers load an immutable map and writers replace it.
type Caches struct {
	mu sync.Mutex // serializes writers
	m  atomic.Pointer[map[int32]*Cache]
}

// get returns the cache of partition, or nil. A nil *Caches has none.
func (s *Caches) Get(partition int32) *Cache {
	if s == nil {
		return nil
	}
	if m := s.m.Load(); m != nil {
		return (*m)[partition]
	}
	return nil
}

// Add makes c the cache of partition until c's store closes.
func (s *Caches) Add(partition int32, c *Cache) {
	c.closed = func() { s.remove(partition, c) }
	s.update(func(m map[int32]*Cache) { m[partition] = c })
}

// remove drops c, if it is still the cache of partition.
func (s *Caches) remove(partition int32, c *Cache) {
	s.update(func(m map[int32]*Cache) {
		if m[partition] == c {
			delete(m, partition)
		}
	})
}

func (s *Caches) update(change func(map[int32]*Cache)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[int32]*Cache{}
	if m := s.m.Load(); m != nil {
		for p, c := range *m {
			next[p] = c
		}
	}
	change(next)
	s.m.Store(&next)
}

// Lookup is a key's score in one partition's store.
type Lookup struct {
	// Open is false when the partition's store is not open on this replica.
	Open bool
	// Found is false for a key without a score.
	Found bool
	Score int64
}

// Lookup reads key's score in the store goka runs for partition. Under
// exactly-once it reads beneath the writes of the transaction still open, so it answers only
// what the changelog holds committed.
func (s *Caches) Lookup(partition int32, key string) (Lookup, error) {
	c := s.Get(partition)
	if c == nil {
		return Lookup{}, nil
	}
	if held, ok := c.Storage.(*txnStore); ok {
		v, err := held.Storage.Get(key)
		if err != nil {
			return Lookup{}, err
		}
		e, err := c.decode(v)
		return Lookup{Open: true, Found: e.present, Score: e.score}, err
	}
	score, found, err := c.Score(key)
	return Lookup{Open: true, Found: found, Score: score}, err
}
