package store

import (
	"sync"
	"sync/atomic"
)

// Stats counts what the stores did: the changelog records restored, and where each restore
// ahead of goka stands. Its zero value is ready to use, and it is safe for concurrent use.
type Stats struct {
	RecordsRestored atomic.Int64
	// RecordsReplicated counts changelog records written into standby and warm-up copies.
	RecordsReplicated atomic.Int64
	// FreeBytes is the free space of the state directory's filesystem at its last check, and
	// MinFreeBytes the reserve it must keep (0 when unchecked).
	FreeBytes, MinFreeBytes atomic.Int64

	mu        sync.Mutex
	restoring map[int32]RestoreProgress
}

// RestoreProgress is where the restore of a table partition ahead of goka stands: the offset
// of the last changelog record written to the store, and the high-water mark it restores to.
type RestoreProgress struct{ Offset, HWM int64 }

func (s *Stats) restoreProgress(partition int32, offset, hwm int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.restoring == nil {
		s.restoring = map[int32]RestoreProgress{}
	}
	s.restoring[partition] = RestoreProgress{Offset: offset, HWM: hwm}
}

func (s *Stats) restoreDone(partition int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.restoring, partition)
}

// Restoring reports the progress of a partition whose store is being restored ahead of goka
// (goka itself then shows the partition as initializing).
func (s *Stats) Restoring(partition int32) (RestoreProgress, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.restoring[partition]
	return p, ok
}
