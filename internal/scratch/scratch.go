package scratch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/internal/store"
)

// offsetKey is the key the store package's Apply records its progress under; it is not a
// table key.
const offsetKey = "__offset"

// Table is a table's latest value per key, in a LevelDB in a directory of its own that Close
// removes. Keys of several partitions may share one Table: a key lives in one partition.
type Table struct {
	dir string
	db  *leveldb.DB
}

// New makes an empty Table in a new directory under parent ("" for the system's temporary
// directory).
func New(parent string) (*Table, error) {
	dir, err := os.MkdirTemp(parent, "enricher-scratch-")
	if err != nil {
		return nil, fmt.Errorf("scratch table: %w", err)
	}
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("scratch table in %s: %w", dir, err)
	}
	return &Table{dir: dir, db: db}, nil
}

// Apply applies changelog records [from, end) of topic/partition, read with read: a value sets
// its key, a tombstone deletes it. It returns the records applied.
func (t *Table) Apply(ctx context.Context, read store.PartitionReader, topic string, partition int32, from, end int64, progress func(offset int64)) (int64, error) {
	if progress == nil {
		progress = func(int64) {}
	}
	return store.Apply(ctx, read, t.db, topic, partition, from, end, progress)
}

// Each calls fn with every key and its value in key order, until fn returns an error. The
// slices are valid only during the call.
func (t *Table) Each(fn func(key, value []byte) error) error {
	it := t.db.NewIterator(nil, nil)
	defer it.Release()
	for it.Next() {
		if string(it.Key()) == offsetKey {
			continue
		}
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// Close closes the table and removes its directory.
func (t *Table) Close() error {
	return errors.Join(t.db.Close(), os.RemoveAll(t.dir))
}

// Diff calls emit, in key order, with the records that turn current into want: a value for every
// key whose value differs or is missing, and a tombstone (nil value) for every key want does not
// have. It returns the number of keys want has.
func Diff(current, want *Table, emit func(*kgo.Record) error) (int, error) {
	ci, wi := current.db.NewIterator(nil, nil), want.db.NewIterator(nil, nil)
	defer ci.Release()
	defer wi.Release()
	cOK, wOK := next(ci), next(wi)
	keys := 0
	for cOK || wOK {
		var cmp int
		switch {
		case !cOK:
			cmp = 1
		case !wOK:
			cmp = -1
		default:
			cmp = bytes.Compare(ci.Key(), wi.Key())
		}
		var err error
		switch {
		case cmp < 0: // only current has it
			err = emit(&kgo.Record{Key: bytes.Clone(ci.Key())})
			cOK = next(ci)
		case cmp > 0: // only want has it
			keys++
			err = emit(&kgo.Record{Key: bytes.Clone(wi.Key()), Value: bytes.Clone(wi.Value())})
			wOK = next(wi)
		default:
			keys++
			if !bytes.Equal(ci.Value(), wi.Value()) {
				err = emit(&kgo.Record{Key: bytes.Clone(wi.Key()), Value: bytes.Clone(wi.Value())})
			}
			cOK, wOK = next(ci), next(wi)
		}
		if err != nil {
			return keys, err
		}
	}
	return keys, errors.Join(ci.Error(), wi.Error())
}

// next moves it to the next table key, past the offset key.
func next(it iterator.Iterator) bool {
	for it.Next() {
		if string(it.Key()) != offsetKey {
			return true
		}
	}
	return false
}

// Load applies every partition of topic in partitions (nil: all), from its start up to until (a
// partition missing from until: to its end), one partition after another, into t, and reports
// progress over all of them. It returns the topic's bounds as they were when the read started.
func Load(ctx context.Context, kc kafkaconf.Config, adm *kadm.Client, t *Table, topic string, partitions []int32, until map[int32]int64, progress changelog.Progress) (map[int32]changelog.Bounds, error) {
	bounds, err := changelog.Offsets(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	targets, _, err := changelog.Targets(topic, bounds, until)
	if err != nil {
		return nil, err
	}
	var total int64
	for p, target := range targets {
		if partitions != nil && !slices.Contains(partitions, p) {
			delete(targets, p)
			continue
		}
		total += target - bounds[p].Start
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	read := changelog.Reader(kc)
	var done int64
	for _, p := range slices.Sorted(maps.Keys(targets)) {
		from := bounds[p].Start
		if _, err := t.Apply(ctx, read, topic, p, from, targets[p], func(offset int64) { progress(done+offset+1-from, total) }); err != nil {
			return nil, err
		}
		done += targets[p] - from
	}
	progress(total, total)
	return bounds, nil
}
