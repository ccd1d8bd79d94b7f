package store

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// ErrDiskFull is a state directory whose filesystem has less free space than the stores'
// reserve. The stores are not written past it: a LevelDB store that meets a full disk in a
// memtable flush retries the flush without end and holds every write behind it, with no
// error to anyone, so the replica would stall silently.
var ErrDiskFull = errors.New("the state directory's filesystem is nearly full")

// DefaultMinFree is the free space a state directory's filesystem keeps by default: room for
// every store of a 16-partition table to flush a memtable of goleveldb's default size (4 MiB)
// at once.
const DefaultMinFree = 64 << 20

// FreeBytes returns the bytes an unprivileged process may still write to dir's filesystem.
func FreeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// CheckSpace returns an error wrapping ErrDiskFull when dir's filesystem has fewer than min
// bytes free, and stores the free bytes in s.
func (s *Stats) CheckSpace(dir string, min int64) error {
	free, err := FreeBytes(dir)
	if err != nil {
		return err
	}
	s.FreeBytes.Store(free)
	if free < min {
		return fmt.Errorf("%w: %s has %d bytes free, below the %d the stores keep in reserve (free space and restart, or lower the reserve)",
			ErrDiskFull, dir, free, min)
	}
	return nil
}

// WatchSpace checks dir every interval until ctx ends; the first time its filesystem has
// fewer than min bytes free it calls stop with the CheckSpace error and returns. A failed
// look-up is not a full disk: it is tried again at the next interval.
func (s *Stats) WatchSpace(ctx context.Context, dir string, min int64, every time.Duration, stop func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.CheckSpace(dir, min); errors.Is(err, ErrDiskFull) {
			stop(err)
			return
		}
	}
}
