package store

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/lovoo/goka/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/twmb/franz-go/pkg/kgo"
)

// openRestoring opens a restoringStore on a fresh or existing LevelDB in dir, as goka would.
func openRestoring(t *testing.T, dir string) (*restoringStore, *Stats) {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	require.NoError(t, err)
	st, err := storage.New(db)
	require.NoError(t, err)
	require.NoError(t, st.Open())
	stats := &Stats{}
	return newRestoringStore(st, db, slog.New(slog.NewTextHandler(io.Discard, nil)), stats, -1), stats
}

// replay applies changelog records [from, to) the way goka's restore does: Set, then SetOffset.
func replay(t *testing.T, r *restoringStore, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		require.NoError(t, r.Set("k"+strconv.Itoa(i), []byte(strconv.Itoa(i))))
		require.NoError(t, r.SetOffset(int64(i)))
	}
}

// reopened returns the offset and the number of keys of the store in dir.
func reopened(t *testing.T, dir string) (int64, int) {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	require.NoError(t, err)
	defer db.Close()
	st, err := storage.New(db)
	require.NoError(t, err)
	off, err := st.GetOffset(-1)
	require.NoError(t, err)
	it := db.NewIterator(nil, nil)
	defer it.Release()
	keys := 0
	for it.Next() {
		if string(it.Key()) != offsetKey {
			keys++
		}
	}
	return off, keys
}

func TestRestoringStore(t *testing.T) {
	for _, tc := range []struct {
		name      string
		records   int
		recover   bool
		wantFlush int // records on disk after a stop before recovery: Close writes the batch
	}{
		{"small restore completes", 10, true, 10},
		{"restore across batches completes", 3*restoreBatchRecords + 5, true, 3*restoreBatchRecords + 5},
		{"stop half-way keeps what was batched", 2*restoreBatchRecords + 7, false, 2*restoreBatchRecords + 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r, stats := openRestoring(t, dir)
			replay(t, r, 1, tc.records+1) // offsets 1..records
			if tc.recover {
				require.NoError(t, r.MarkRecovered())
				assert.Equal(t, int64(tc.records), stats.RecordsRestored.Load())
				// after recovery writes go straight through
				require.NoError(t, r.Set("live", []byte("1")))
				require.NoError(t, r.SetOffset(int64(tc.records+1)))
				require.NoError(t, r.Close())
				off, keys := reopened(t, dir)
				assert.Equal(t, int64(tc.records+1), off)
				assert.Equal(t, tc.records+1, keys)
				return
			}
			require.NoError(t, r.Close())
			off, keys := reopened(t, dir)
			assert.Equal(t, int64(tc.wantFlush), off, "the stored offset is the last record written")
			assert.Equal(t, tc.wantFlush, keys)
		})
	}
}

// TestRestoringStoreOffsetNeverAhead checks the invariant a crash relies on: whenever a full
// batch has been written, the offset on disk names a record that is on disk too.
func TestRestoringStoreOffsetNeverAhead(t *testing.T) {
	dir := t.TempDir()
	r, _ := openRestoring(t, dir)
	replay(t, r, 1, restoreBatchRecords+3) // one full batch written, 2 records pending
	got, err := r.db.Get([]byte(offsetKey), nil)
	require.NoError(t, err)
	off, err := strconv.ParseInt(string(got), 10, 64)
	require.NoError(t, err)
	assert.Equal(t, int64(restoreBatchRecords), off)
	v, err := r.db.Get([]byte("k"+strconv.FormatInt(off, 10)), nil)
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatInt(off, 10), string(v))
	_, err = r.db.Get([]byte("k"+strconv.FormatInt(off+1, 10)), nil)
	assert.ErrorIs(t, err, leveldb.ErrNotFound, "a pending record is not on disk before its batch")
	require.NoError(t, r.Close())
}

// TestRestoringStoreCloseLeavesNoJournal checks that a graceful close writes the memtable out,
// so the next open has no journal to replay.
func TestRestoringStoreCloseLeavesNoJournal(t *testing.T) {
	dir := t.TempDir()
	r, _ := openRestoring(t, dir)
	replay(t, r, 1, 20_001)
	require.NoError(t, r.MarkRecovered())
	require.NoError(t, r.Set("live", []byte("1")))
	require.NoError(t, r.Close())
	journals, err := filepath.Glob(filepath.Join(dir, "*.log"))
	require.NoError(t, err)
	var size int64
	for _, j := range journals {
		fi, err := os.Stat(j)
		require.NoError(t, err)
		size += fi.Size()
	}
	assert.Less(t, size, int64(4096), "journal bytes left for the next open to replay")
	off, keys := reopened(t, dir)
	assert.Equal(t, int64(20_000), off)
	assert.Equal(t, 20_001, keys)
}

// fakeChangelog serves records of one partition as a PartitionReader, two per batch.
func fakeChangelog(records []*kgo.Record) PartitionReader {
	return func(_ context.Context, _ string, _ int32, from, end int64, fn func([]*kgo.Record, int64) error) error {
		var batch []*kgo.Record
		for _, r := range records {
			if r.Offset < from || r.Offset >= end {
				continue
			}
			if batch = append(batch, r); len(batch) == 2 {
				if err := fn(batch, r.Offset); err != nil {
					return err
				}
				batch = nil
			}
		}
		if len(batch) > 0 {
			return fn(batch, batch[len(batch)-1].Offset)
		}
		return nil
	}
}

func TestGuardRestoresAheadOfGoka(t *testing.T) {
	log := []*kgo.Record{ // offsets 0..4 with a gap at 2 (compacted) and a tombstone
		{Offset: 0, Key: []byte("a"), Value: []byte("1")},
		{Offset: 1, Key: []byte("b"), Value: []byte("1")},
		{Offset: 3, Key: []byte("a"), Value: []byte("2")},
		{Offset: 4, Key: []byte("b"), Value: nil},
		{Offset: 5, Key: []byte("c"), Value: []byte("3")},
	}
	for _, tc := range []struct {
		name     string
		seed     int64 // offset of a seeded store, -1 for none
		restored int64
	}{
		{"empty store restores everything", -1, 5},
		{"warm store restores what it lacks", 3, 2},
		{"current store restores nothing", 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.seed >= 0 {
				seedStore(t, dir, tc.seed)
			}
			g := guardWith(dir, 0, 6)
			g.read = fakeChangelog(log)
			st, err := g.Builder()(topic, 0)
			require.NoError(t, err)
			r := st.(*restoringStore)
			assert.Equal(t, tc.restored, r.restored)
			off, err := st.GetOffset(-1)
			require.NoError(t, err)
			assert.Equal(t, int64(5), off, "goka's recovery starts after the last record")
			if tc.seed < 0 {
				for key, want := range map[string]string{"a": "2", "b": "", "c": "3"} {
					v, err := r.db.Get([]byte(key), nil)
					if want == "" {
						assert.ErrorIs(t, err, leveldb.ErrNotFound, "a tombstone deletes %s", key)
						continue
					}
					require.NoError(t, err)
					assert.Equal(t, want, string(v))
				}
			}
			require.NoError(t, st.Close())
		})
	}
}
