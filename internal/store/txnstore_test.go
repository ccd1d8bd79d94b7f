package store

import (
	"fmt"
	"testing"

	"github.com/lovoo/goka/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
)

// openTxnStore returns a recovered txnStore of partition 2 over a fresh LevelDB store, and that
// store's database; owned says whether the session owns the partition.
func openTxnStore(t *testing.T, owned bool) (*txnStore, *leveldb.DB) {
	t.Helper()
	db, err := leveldb.OpenFile(t.TempDir(), nil)
	require.NoError(t, err)
	st, err := storage.New(db)
	require.NoError(t, err)
	reg := NewHeld()
	if owned {
		reg.Own([]int32{2})
	}
	s := reg.wrap(st, db, 2)
	require.NoError(t, s.Set("before", []byte("restored"))) // recovery writes go straight through
	require.NoError(t, s.MarkRecovered())
	t.Cleanup(func() { _ = s.Close() })
	return s, db
}

func dbValue(t *testing.T, db *leveldb.DB, key string) string {
	t.Helper()
	v, err := db.Get([]byte(key), nil)
	if err == leveldb.ErrNotFound {
		return "<none>"
	}
	require.NoError(t, err)
	return string(v)
}

func TestTxnStoreHoldsWritesUntilCommit(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*txnStore) error
		want map[string]string // in LevelDB after the unit ended
	}{
		{"commit", (*txnStore).commit, map[string]string{"before": "<none>", "k": "v2", offsetKey: "42"}},
		{"abort", func(s *txnStore) error { s.discard(); return nil }, map[string]string{"before": "restored", "k": "<none>", offsetKey: "<none>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db := openTxnStore(t, true)
			require.NoError(t, s.Set("k", []byte("v1")))
			require.NoError(t, s.Set("k", []byte("v2")))
			require.NoError(t, s.Delete("before"))
			require.NoError(t, s.SetOffset(41))
			require.NoError(t, s.SetOffset(42))

			// The callbacks see the unit's writes; LevelDB does not yet.
			v, err := s.Get("k")
			require.NoError(t, err)
			assert.Equal(t, "v2", string(v))
			has, err := s.Has("before")
			require.NoError(t, err)
			assert.False(t, has)
			assert.Equal(t, "<none>", dbValue(t, db, "k"))
			assert.Equal(t, "restored", dbValue(t, db, "before"))

			require.NoError(t, tc.end(s))
			for k, want := range tc.want {
				assert.Equal(t, want, dbValue(t, db, k), "key %s", k)
			}
		})
	}
}

// A partition the session does not own (a copy following the changelog) applies committed changelog
// records: its writes go straight to LevelDB, and commits do not touch it.
func TestTxnStoreOfPartitionNotOwnedWritesThrough(t *testing.T) {
	s, db := openTxnStore(t, false)
	require.NoError(t, s.Set("k", []byte("v")))
	assert.Equal(t, "v", dbValue(t, db, "k"))
	s.reg.Discard()
	assert.Equal(t, "v", dbValue(t, db, "k"))
}

// A store released (kept open for a next session, or closed) leaves the transactions: a later
// commit does not write what it still held.
func TestTxnStoreReleased(t *testing.T) {
	s, db := openTxnStore(t, true)
	require.NoError(t, s.Set("k", []byte("v")))
	s.release()
	require.NoError(t, s.reg.Commit())
	assert.Equal(t, "<none>", dbValue(t, db, "k"))
}

// The lookup the web server uses reads what is committed: a held write is not seen until its
// transaction commits, and a held deletion does not hide the committed score.
func TestLookupReadsCommittedScores(t *testing.T) {
	s, _ := openTxnStore(t, true)
	score := func(n int) []byte { return fmt.Appendf(nil, `{"key":"k","score":%d}`, n) }
	require.NoError(t, s.Set("k", score(1)))
	require.NoError(t, s.commit())
	r := &Caches{}
	r.Add(2, NewCache(s, 10))

	require.NoError(t, s.Set("k", score(2)))
	got, err := r.Lookup(2, "k")
	require.NoError(t, err)
	assert.Equal(t, Lookup{Open: true, Found: true, Score: 1}, got, "the open transaction's write is not read")
	require.NoError(t, s.Delete("k"))
	got, err = r.Lookup(2, "k")
	require.NoError(t, err)
	assert.Equal(t, Lookup{Open: true, Found: true, Score: 1}, got, "nor its deletion")
	require.NoError(t, s.Set("k", score(3)))
	require.NoError(t, s.commit())
	got, err = r.Lookup(2, "k")
	require.NoError(t, err)
	assert.Equal(t, Lookup{Open: true, Found: true, Score: 3}, got, "committed: read")

	got, err = r.Lookup(2, "nobody")
	require.NoError(t, err)
	assert.Equal(t, Lookup{Open: true}, got)
	got, err = r.Lookup(5, "k")
	require.NoError(t, err)
	assert.Equal(t, Lookup{}, got, "partition 5 has no store here")
}

// Without transactions the lookup reads through the score cache.
func TestLookupWithoutTransactions(t *testing.T) {
	db, err := leveldb.OpenFile(t.TempDir(), nil)
	require.NoError(t, err)
	st, err := storage.New(db)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	c := NewCache(st, 10)
	require.NoError(t, c.MarkRecovered())
	require.NoError(t, c.Set("k", []byte(`{"key":"k","score":7}`)))
	r := &Caches{}
	r.Add(0, c)
	got, err := r.Lookup(0, "k")
	require.NoError(t, err)
	assert.Equal(t, Lookup{Open: true, Found: true, Score: 7}, got)
}
