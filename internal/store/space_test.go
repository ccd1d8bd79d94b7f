package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckSpace(t *testing.T) {
	dir := t.TempDir()
	free, err := FreeBytes(dir)
	require.NoError(t, err)
	require.Positive(t, free)
	for _, tc := range []struct {
		name string
		min  int64
		full bool
	}{
		{"no reserve", 0, false},
		{"a reserve the disk keeps", 1, false},
		{"a reserve above the disk's free space", free + 1<<40, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Stats
			err := s.CheckSpace(dir, tc.min)
			assert.Equal(t, tc.full, errors.Is(err, ErrDiskFull), "%v", err)
			if tc.full {
				assert.ErrorContains(t, err, dir)
			}
			assert.Positive(t, s.FreeBytes.Load(), "the free space is recorded")
		})
	}
	_, err = FreeBytes(dir + "/missing")
	assert.Error(t, err)
}

func TestWatchSpaceStopsOnce(t *testing.T) {
	var s Stats
	stopped := make(chan error, 2)
	done := make(chan struct{})
	go func() {
		s.WatchSpace(context.Background(), t.TempDir(), 1<<62, 10*time.Millisecond, func(err error) { stopped <- err })
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WatchSpace did not return after stopping")
	}
	require.Len(t, stopped, 1)
	assert.ErrorIs(t, <-stopped, ErrDiskFull)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.WatchSpace(ctx, t.TempDir(), 1<<62, time.Hour, func(error) { t.Error("stopped after its context ended") })
}
