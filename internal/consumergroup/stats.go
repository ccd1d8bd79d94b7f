package consumergroup

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are the consumer group's counters, per partition; safe for concurrent use. A nil
// *Stats counts nothing.
type Stats struct {
	// Sessions counts the consumer-group sessions run (one per rebalance, plus the first).
	Sessions atomic.Int64
	// Commits counts the exactly-once transactions committed, CommitsFailed those that failed;
	// CommitNanos is the time the commits held the records back, DrainNanos the part of it
	// spent waiting for goka to finish the records it had been handed.
	Commits       atomic.Int64
	CommitsFailed atomic.Int64
	CommitNanos   atomic.Int64
	DrainNanos    atomic.Int64
	// MarksIgnored counts goka's offset marks for records the session never handed on: the
	// commit watermark ignores them (see watermark). Any is a bug worth a look.
	MarksIgnored atomic.Int64

	mu    sync.Mutex
	parts map[int32]*PartitionStats
}

// NewStats returns empty Stats.
func NewStats() *Stats { return &Stats{parts: make(map[int32]*PartitionStats)} }

func (s *Stats) commitDone(took, drained time.Duration) {
	s.Commits.Add(1)
	s.CommitNanos.Add(int64(took))
	s.DrainNanos.Add(int64(drained))
}

// Partition returns partition p's counters, made on first use.
func (s *Stats) Partition(p int32) *PartitionStats {
	if s == nil {
		return &PartitionStats{partition: p}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, ok := s.parts[p]
	if !ok {
		ps = &PartitionStats{partition: p}
		s.parts[p] = ps
	}
	return ps
}

// Partitions returns every partition's counters, by partition.
func (s *Stats) Partitions() []*PartitionStats {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	out := make([]*PartitionStats, 0, len(s.parts))
	for _, ps := range s.parts {
		out = append(out, ps)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].partition < out[j].partition })
	return out
}

// PartitionStats are one partition's timestamp-alignment counters.
type PartitionStats struct {
	partition int32
	// Waits counts the spells in which a record was held back for another topic; WaitNanos is
	// their total length.
	Waits     atomic.Int64
	WaitNanos atomic.Int64
	// LagWaitsExpired counts waits for records the broker held that did not arrive within the
	// lag wait; IdleWaitsExpired counts --max-idle waits that ran out.
	LagWaitsExpired  atomic.Int64
	IdleWaitsExpired atomic.Int64
	// MissingTimestamps counts records handed on in offset order for want of a timestamp.
	MissingTimestamps atomic.Int64
	// streamTime is the highest timestamp handed on, in Unix milliseconds.
	streamTime atomic.Int64
	waiting    atomic.Pointer[Wait]
}

// Wait is a record held back for another topic of its partition.
type Wait struct {
	Topic string    `json:"topic"`
	Since time.Time `json:"since"`
	// Lag is true when the broker holds records of Topic that were not received yet; false
	// when Topic has none and --max-idle waits for producers.
	Lag bool `json:"lag"`
}

// ID returns the partition's number.
func (p *PartitionStats) ID() int32 { return p.partition }

// StreamTime returns the highest record timestamp handed on, or the zero time.
func (p *PartitionStats) StreamTime() time.Time {
	if ms := p.streamTime.Load(); ms > 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

// Waiting returns the wait under way, or nil.
func (p *PartitionStats) Waiting() *Wait { return p.waiting.Load() }

func (p *PartitionStats) advance(ts time.Time) {
	if ms := ts.UnixMilli(); ms > p.streamTime.Load() {
		p.streamTime.Store(ms)
	}
}

func (p *PartitionStats) beginWait(topic string, lag bool) {
	p.Waits.Add(1)
	p.waiting.Store(&Wait{Topic: topic, Since: time.Now(), Lag: lag})
}

func (p *PartitionStats) waited(d time.Duration) {
	p.WaitNanos.Add(int64(d))
	p.waiting.Store(nil)
}
