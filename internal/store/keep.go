package store

import (
	"log/slog"
	"sync"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
)

// keptStores holds the LevelDB handles of stores goka closed at the end of a consumer-group
// session, for the next session of the same processor to take back. goka closes every store at
// every rebalance and opens them again in the next session's setup; a real close writes the
// memtable out (restoringStore.Close), which at 1M keys took over a second per store, all
// partitions stopped meanwhile. Only a recovered store is kept: goka then writes its offset with
// every record, so its storage object holds nothing the database lacks, and a new one is made
// over the database when the store is taken back (goka's storage recovers once). A kept store
// is checked against its changelog again then, like any store, and caught up by goka from its
// own offset. One not taken back within ttl (its partition moved to another replica), and every
// kept store once the processor stops, is closed for real.
type keptStores struct {
	ttl time.Duration
	log *slog.Logger

	mu   sync.Mutex
	kept map[string]*keptStore
}

type keptStore struct {
	db    *leveldb.DB
	timer *time.Timer
}

func newKeptStores(ttl time.Duration, log *slog.Logger) *keptStores {
	return &keptStores{ttl: ttl, log: log, kept: make(map[string]*keptStore)}
}

// keep holds the store at path open; a nil *keptStores keeps nothing and returns false.
func (k *keptStores) keep(path string, db *leveldb.DB) bool {
	if k == nil {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	ks := &keptStore{db: db}
	ks.timer = time.AfterFunc(k.ttl, func() { k.expire(path, ks) })
	k.kept[path] = ks
	return true
}

// take returns the database kept open at path, or nil; it is the caller's from then on.
func (k *keptStores) take(path string) *leveldb.DB {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	ks, ok := k.kept[path]
	if !ok {
		return nil
	}
	delete(k.kept, path)
	ks.timer.Stop()
	return ks.db
}

// peek returns the database kept open at path, or nil, leaving it kept.
func (k *keptStores) peek(path string) *leveldb.DB {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if ks, ok := k.kept[path]; ok {
		return ks.db
	}
	return nil
}

// expire closes ks if it is still the store kept at path.
func (k *keptStores) expire(path string, ks *keptStore) {
	k.mu.Lock()
	if k.kept[path] != ks {
		k.mu.Unlock()
		return
	}
	delete(k.kept, path)
	k.mu.Unlock()
	if err := closeDB(ks.db); err != nil {
		k.log.Warn("close a local store no session took back", "path", path, "error", err.Error())
	}
}

// closeAll closes every kept store for real and returns the first error.
func (k *keptStores) closeAll() error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	kept := k.kept
	k.kept = make(map[string]*keptStore)
	k.mu.Unlock()
	var first error
	for path, ks := range kept {
		ks.timer.Stop()
		if err := closeDB(ks.db); err != nil {
			k.log.Warn("close a local store", "path", path, "error", err.Error())
			if first == nil {
				first = err
			}
		}
	}
	return first
}
