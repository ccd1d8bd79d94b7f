package store

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
)

func TestCleanup(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := NewGuard(context.Background(), Config{Dir: dir, Offsets: newMemLog().bounds, Stats: &Stats{}, Logger: quiet, KeepFor: time.Hour})
	require.NoError(t, err)
	for _, name := range []string{"t.0", "t.1", "t.2", "t.2.stale-20261201T100000.000000001", "t.2.corrupt-20261202T090000.000000001",
		"t.2.stale-20261202T100000.000000001", "t.5.stale-20261202T100000.000000001", "other.2", "t.x", "process-id-dir"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, name), 0o755))
	}
	g.setInUse(filepath.Join(dir, "t.0"), true)
	kept, err := leveldb.OpenFile(filepath.Join(dir, "t.1"), nil)
	require.NoError(t, err)
	require.True(t, g.kept.keep(filepath.Join(dir, "t.1"), kept))
	t.Cleanup(func() { _ = g.CloseKept() })

	unwanted := map[string]time.Time{}
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	g.cleanOnce("t", 10*time.Minute, unwanted, t0)
	assert.ElementsMatch(t, []string{"t.0", "t.1", "t.2", "t.2.stale-20261202T100000.000000001", "t.5.stale-20261202T100000.000000001",
		"other.2", "t.x", "process-id-dir"}, names(t, dir), "of the stores moved aside, only the newest of each partition stays")
	g.cleanOnce("t", 10*time.Minute, unwanted, t0.Add(9*time.Minute))
	assert.Contains(t, names(t, dir), "t.2", "unused for less than the delay")
	g.cleanOnce("t", 10*time.Minute, unwanted, t0.Add(10*time.Minute))
	assert.ElementsMatch(t, []string{"t.0", "t.1", "t.2.stale-20261202T100000.000000001", "t.5.stale-20261202T100000.000000001",
		"other.2", "t.x", "process-id-dir"}, names(t, dir), "unused for the delay: deleted; open, kept and other tables' stores stay")

	// A store that serves again in between starts its delay over.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "t.7"), 0o755))
	g.cleanOnce("t", 10*time.Minute, unwanted, t0.Add(11*time.Minute))
	g.setInUse(filepath.Join(dir, "t.7"), true)
	g.cleanOnce("t", 10*time.Minute, unwanted, t0.Add(15*time.Minute))
	g.setInUse(filepath.Join(dir, "t.7"), false)
	g.cleanOnce("t", 10*time.Minute, unwanted, t0.Add(22*time.Minute))
	assert.Contains(t, names(t, dir), "t.7")
	g.cleanOnce("t", 10*time.Minute, unwanted, t0.Add(32*time.Minute))
	assert.NotContains(t, names(t, dir), "t.7")
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
