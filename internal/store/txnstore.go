package store

import (
	"errors"
	"fmt"
	"sync"

	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb"
)

// txnStore keeps a partition's table writes of the open transaction in memory, in front of
// its LevelDB store, and writes them with their changelog offset in one LevelDB batch once the
// transaction committed. A transaction that aborts leaves nothing in LevelDB, and a crash
// before a commit leaves the store at the last commit: the local store never runs ahead of the
// committed changelog. It holds writes back only once the partition is recovered, and only for
// a partition the session owns (a copy that follows the changelog applies committed records).
type txnStore struct {
	storage.Storage
	db        *leveldb.DB
	partition int32
	reg       *Held

	mu      sync.Mutex
	holding bool
	writes  map[string]pendingWrite
	offset  int64
	moved   bool // offset is set
}

// pendingWrite is a key's value, or its deletion, not yet committed.
type pendingWrite struct {
	value   []byte
	deleted bool
}

func (s *txnStore) Get(key string) ([]byte, error) {
	s.mu.Lock()
	w, ok := s.writes[key]
	s.mu.Unlock()
	if ok {
		if w.deleted {
			return nil, nil
		}
		return w.value, nil
	}
	return s.Storage.Get(key)
}

func (s *txnStore) Has(key string) (bool, error) {
	s.mu.Lock()
	w, ok := s.writes[key]
	s.mu.Unlock()
	if ok {
		return !w.deleted, nil
	}
	return s.Storage.Has(key)
}

func (s *txnStore) Set(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holding {
		return s.Storage.Set(key, value)
	}
	s.writes[key] = pendingWrite{value: value}
	return nil
}

func (s *txnStore) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holding {
		return s.Storage.Delete(key)
	}
	s.writes[key] = pendingWrite{deleted: true}
	return nil
}

func (s *txnStore) SetOffset(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.holding {
		return s.Storage.SetOffset(offset)
	}
	if offset > s.offset || !s.moved {
		s.offset, s.moved = offset, true
	}
	return nil
}

// MarkRecovered starts holding writes back, if the session owns the partition.
func (s *txnStore) MarkRecovered() error {
	if err := s.Storage.MarkRecovered(); err != nil {
		return err
	}
	if s.reg.owns(s.partition) {
		s.mu.Lock()
		s.holding, s.writes = true, map[string]pendingWrite{}
		s.mu.Unlock()
		s.reg.add(s)
	}
	return nil
}

// commit writes the held writes and their offset to LevelDB in one batch.
func (s *txnStore) commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.writes) == 0 && !s.moved {
		return nil
	}
	var b leveldb.Batch
	for k, w := range s.writes {
		if w.deleted {
			b.Delete([]byte(k))
		} else {
			b.Put([]byte(k), w.value)
		}
	}
	if s.moved {
		putOffset(&b, s.offset)
	}
	if err := s.db.Write(&b, nil); err != nil {
		return fmt.Errorf("write committed table writes of partition %d: %w", s.partition, err)
	}
	clear(s.writes)
	s.moved = false
	return nil
}

// discard drops the held writes: their transaction did not commit.
func (s *txnStore) discard() {
	s.mu.Lock()
	clear(s.writes)
	s.moved = false
	s.mu.Unlock()
}

// release takes the store out of the transactions, dropping what it still holds: its
// partition's last commit has been made or aborted.
func (s *txnStore) release() {
	s.reg.remove(s)
	s.discard()
}

func (s *txnStore) Close() error {
	s.release()
	return s.Storage.Close()
}

// Held are the stores of the partitions the current session owns.
type Held struct {
	mu     sync.Mutex
	owned  map[int32]bool
	stores map[*txnStore]struct{}
}

func NewHeld() *Held {
	return &Held{owned: map[int32]bool{}, stores: map[*txnStore]struct{}{}}
}

// wrap puts a transaction's writes in front of st, the store of partition in db.
func (r *Held) wrap(st storage.Storage, db *leveldb.DB, partition int32) *txnStore {
	return &txnStore{Storage: st, db: db, partition: partition, reg: r}
}

// own notes the partitions the session owns.
func (r *Held) Own(partitions []int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.owned)
	for _, p := range partitions {
		r.owned[p] = true
	}
}

func (r *Held) owns(p int32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.owned[p]
}

func (r *Held) add(s *txnStore) {
	r.mu.Lock()
	r.stores[s] = struct{}{}
	r.mu.Unlock()
}

func (r *Held) remove(s *txnStore) {
	r.mu.Lock()
	delete(r.stores, s)
	r.mu.Unlock()
}

func (r *Held) each(fn func(*txnStore) error) error {
	r.mu.Lock()
	stores := make([]*txnStore, 0, len(r.stores))
	for s := range r.stores {
		stores = append(stores, s)
	}
	r.mu.Unlock()
	var errs []error
	for _, s := range stores {
		if err := fn(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// commitAll writes every store's held writes: their transaction committed.
func (r *Held) Commit() error { return r.each(func(s *txnStore) error { return s.commit() }) }

// discardAll drops every store's held writes: their transaction aborted.
func (r *Held) Discard() {
	_ = r.each(func(s *txnStore) error { s.discard(); return nil })
}
