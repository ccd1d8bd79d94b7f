package store

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
)

// keepingGuard returns a state directory with a store at changelog offset 10, and a guard over
// it that keeps stores open for ttl; the changelog runs from 0 to 20.
func keepingGuard(t *testing.T, ttl time.Duration) (string, *Guard) {
	t.Helper()
	dir := t.TempDir()
	seedStore(t, dir, 10)
	g := guardWith(dir, 0, 20)
	g.kept = newKeptStores(ttl, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return dir, g
}

// A store goka closes at the end of a session stays open, and the next session's builder gets
// the same LevelDB handle back, checked against the changelog like any store.
func TestKeptStoreIsTakenBack(t *testing.T) {
	dir, g := keepingGuard(t, time.Hour)
	first, err := g.Builder()(topic, 0)
	require.NoError(t, err)
	db := first.(*restoringStore).db
	require.NoError(t, first.MarkRecovered())
	require.NoError(t, first.SetOffset(12))
	require.NoError(t, first.Close())
	_, err = db.Get([]byte("k"), nil)
	require.NoError(t, err, "the kept store is still open")

	again, err := g.Builder()(topic, 0)
	require.NoError(t, err)
	assert.Same(t, db, again.(*restoringStore).db, "the next session takes the open handle back")
	off, err := again.GetOffset(-1)
	require.NoError(t, err)
	assert.Equal(t, int64(12), off)
	require.NoError(t, again.MarkRecovered(), "a store taken back recovers again")
	require.NoError(t, again.Close())

	require.NoError(t, g.kept.closeAll())
	_, err = db.Get([]byte("k"), nil)
	assert.ErrorIs(t, err, leveldb.ErrClosed, "closeAll closes what it kept")
	assert.Nil(t, g.kept.take(Path(dir, topic, 0)))
}

// A kept store that the changelog no longer backs is not trusted: it is closed and rebuilt.
func TestKeptStoreIsChecked(t *testing.T) {
	dir, g := keepingGuard(t, time.Hour)
	st, err := g.Builder()(topic, 0)
	require.NoError(t, err)
	require.NoError(t, st.Close())

	g.offsets = guardWith(dir, 0, 5).offsets // the changelog was truncated meanwhile
	st, err = g.Builder()(topic, 0)
	require.NoError(t, err)
	defer st.Close()
	off, err := st.GetOffset(-1)
	require.NoError(t, err)
	assert.Equal(t, int64(-1), off, "rebuilt from the changelog")
	assert.Len(t, quarantined(t, dir), 1)
}

func TestKeptStoreExpires(t *testing.T) {
	dir, g := keepingGuard(t, 50*time.Millisecond)
	st, err := g.Builder()(topic, 0)
	require.NoError(t, err)
	db := st.(*restoringStore).db
	require.NoError(t, st.Close())
	require.Eventually(t, func() bool {
		_, err := db.Get([]byte("k"), nil)
		return err == leveldb.ErrClosed
	}, 5*time.Second, 10*time.Millisecond, "a store no session took back is closed")
	assert.Nil(t, g.kept.take(Path(dir, topic, 0)))
}

// A store closed before its partition recovered is closed for real: goka's storage still holds
// its offset in memory then.
func TestUnrecoveredStoreIsNotKept(t *testing.T) {
	dir, g := keepingGuard(t, time.Hour)
	st, err := g.Builder()(topic, 0)
	require.NoError(t, err)
	db := st.(*restoringStore).db
	require.NoError(t, st.Close())
	_, err = db.Get([]byte("k"), nil)
	assert.ErrorIs(t, err, leveldb.ErrClosed)
	assert.Nil(t, g.kept.take(Path(dir, topic, 0)))
}
