package store

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lovoo/goka/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
)

const topic = "g-table"

// seedStore writes a store with one key and the given changelog offset, as goka leaves it.
func seedStore(t *testing.T, dir string, offset int64) {
	t.Helper()
	db, err := leveldb.OpenFile(Path(dir, topic, 0), nil)
	require.NoError(t, err)
	st, err := storage.New(db)
	require.NoError(t, err)
	require.NoError(t, st.Set("k", []byte(`{"key":"k","score":1}`)))
	require.NoError(t, st.MarkRecovered())
	require.NoError(t, st.SetOffset(offset))
	require.NoError(t, db.Close())
}

func guardWith(dir string, start, end int64) *Guard {
	return &Guard{
		dir:     dir,
		offsets: func(context.Context, string, int32) (int64, int64, error) { return start, end, nil },
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		stats:   &Stats{},
	}
}

func quarantined(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(Path(dir, topic, 0) + ".*-*")
	require.NoError(t, err)
	return m
}

func TestStoreGuard(t *testing.T) {
	for _, tc := range []struct {
		name        string
		seed        int64 // changelog offset of the seeded store; -1: no store
		start, end  int64
		keepsData   bool
		quarantines bool
		unrecover   bool
	}{
		{"fresh store", -1, 0, 0, false, false, false},
		{"store behind the changelog is kept", 10, 0, 20, true, false, false},
		{"store at the changelog's last record is kept", 19, 0, 20, true, false, false},
		{"store ahead of the changelog is rebuilt", 10, 0, 5, false, true, false},
		{"store before the changelog's start is rebuilt", 10, 15, 30, false, true, false},
		{"store with data and an empty changelog stops the job", 10, 0, 0, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.seed >= 0 {
				seedStore(t, dir, tc.seed)
			}
			g := guardWith(dir, tc.start, tc.end)
			st, err := g.Builder()(topic, 0)
			if tc.unrecover {
				require.ErrorIs(t, err, ErrStateUnrecoverable)
				require.ErrorIs(t, g.Fatal(), ErrStateUnrecoverable)
				assert.Empty(t, quarantined(t, dir), "the store is left as it is")
				seedStoreReadable(t, dir)
				return
			}
			require.NoError(t, err)
			defer st.Close()
			assert.NoError(t, g.Fatal())
			v, err := st.Get("k")
			require.NoError(t, err)
			assert.Equal(t, tc.keepsData, v != nil)
			assert.Equal(t, tc.quarantines, len(quarantined(t, dir)) == 1)
		})
	}
}

// Each store records the ID of the changelog topic it was built from; a store of a topic since
// deleted and recreated under its name stops the job, or with RebuildRecreated is rebuilt.
func TestStoreGuardTopicID(t *testing.T) {
	for _, tc := range []struct {
		name        string
		recorded    string // "" for a store that records none
		current     string // the topic's ID now ("" for a cluster without IDs)
		rebuild     bool
		keepsData   bool
		quarantines bool
		stops       bool
		records     string // the ID the store records afterwards
	}{
		{"same topic", "AAA", "AAA", false, true, false, false, "AAA"},
		{"a store of an earlier version adopts the ID", "", "AAA", false, true, false, false, "AAA"},
		{"recreated topic stops the job", "AAA", "BBB", false, true, false, true, "AAA"},
		{"recreated topic, rebuild", "AAA", "BBB", true, false, true, false, "BBB"},
		{"a cluster without IDs checks nothing", "AAA", "", false, true, false, false, "AAA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			seedStore(t, dir, 10)
			if tc.recorded != "" {
				require.NoError(t, writeTopicID(Path(dir, topic, 0), tc.recorded))
			}
			g := guardWith(dir, 0, 20)
			g.topicID = func(context.Context, string) (string, error) { return tc.current, nil }
			g.rebuildRecreated = tc.rebuild
			st, err := g.Builder()(topic, 0)
			if tc.stops {
				require.ErrorIs(t, err, ErrChangelogRecreated)
				require.ErrorIs(t, g.Fatal(), ErrChangelogRecreated)
				assert.ErrorContains(t, err, "with ID AAA, and the topic of that name now has ID BBB")
				assert.Empty(t, quarantined(t, dir), "the store is left as it is")
			} else {
				require.NoError(t, err)
				v, err := st.Get("k")
				require.NoError(t, err)
				assert.Equal(t, tc.keepsData, v != nil)
				assert.Equal(t, tc.quarantines, len(quarantined(t, dir)) == 1)
				require.NoError(t, st.Close())
			}
			got, err := readTopicID(Path(dir, topic, 0))
			require.NoError(t, err)
			assert.Equal(t, tc.records, got)
		})
	}
}

func seedStoreReadable(t *testing.T, dir string) {
	t.Helper()
	db, err := leveldb.OpenFile(Path(dir, topic, 0), nil)
	require.NoError(t, err)
	defer db.Close()
	v, err := db.Get([]byte("k"), nil)
	require.NoError(t, err)
	assert.NotEmpty(t, v)
}

func TestStoreGuardMovesCorruptStoreAside(t *testing.T) {
	dir := t.TempDir()
	seedStore(t, dir, 10)
	path := Path(dir, topic, 0)
	entries, err := os.ReadDir(path)
	require.NoError(t, err)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == "" && e.Name() != "LOCK" && e.Name() != "LOG" && e.Name() != "CURRENT" {
			require.NoError(t, os.WriteFile(filepath.Join(path, e.Name()), []byte("garbage"), 0o644))
		}
	}
	g := guardWith(dir, 0, 20)
	st, err := g.Builder()(topic, 0)
	require.NoError(t, err)
	defer st.Close()
	v, err := st.Get("k")
	require.NoError(t, err)
	assert.Nil(t, v, "a fresh store replaces the corrupt one")
	moved, err := filepath.Glob(path + ".corrupt-*")
	require.NoError(t, err)
	assert.Len(t, moved, 1)
}

func TestRestoreLogCountsOnlyRecovery(t *testing.T) {
	dir := t.TempDir()
	g := guardWith(dir, 0, 0)
	st, err := g.Builder()(topic, 0)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Set("a", []byte("1")))
	require.NoError(t, st.Delete("a"))
	require.NoError(t, st.MarkRecovered())
	require.NoError(t, st.Set("b", []byte("2")))
	assert.Equal(t, int64(2), g.stats.RecordsRestored.Load())
}

func TestConfigValidate(t *testing.T) {
	offsets := func(context.Context, string, int32) (int64, int64, error) { return 0, 0, nil }
	good := Config{Dir: t.TempDir(), Offsets: offsets, Stats: &Stats{}, CacheEntries: 10, KeepFor: time.Minute}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		err    string
	}{
		{"good", func(*Config) {}, ""},
		{"no state directory", func(c *Config) { c.Dir = "" }, "state directory"},
		{"no offsets", func(c *Config) { c.Offsets = nil }, "offsets"},
		{"no stats", func(c *Config) { c.Stats = nil }, "stats"},
		{"negative cache", func(c *Config) { c.CacheEntries = -1 }, "cache entries"},
		{"negative keep", func(c *Config) { c.KeepFor = -time.Second }, "keep-for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			g, err := NewGuard(context.Background(), c)
			if tc.err == "" {
				require.NoError(t, err)
				assert.NotNil(t, g.Builder())
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}
