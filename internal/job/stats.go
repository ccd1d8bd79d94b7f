package job

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/consumergroup"
	"github.com/enricher/enricher/internal/stagetime"
	"github.com/enricher/enricher/internal/store"
)

// Stats counts what the processor did. It is safe for concurrent use; a metrics endpoint reads it.
type Stats struct {
	InputsConsumed    atomic.Int64
	OutputsEmitted    atomic.Int64
	OutputsNoScore    atomic.Int64
	ScoresApplied     atomic.Int64
	TombstonesApplied atomic.Int64
	Restarts          atomic.Int64
	Rebalances        atomic.Int64
	// AsOfOutsideHistory counts inputs of the as-of join stamped before their key's kept
	// history: they got codecs.NoScore.
	AsOfOutsideHistory atomic.Int64
	// Alignment counts the consumer group's sessions and each partition's timestamp alignment.
	Alignment *consumergroup.Stats
	// Stats counts the local stores' restores (RecordsRestored, Restoring).
	store.Stats
	// Stages holds the breakdown of sampled outputs' time; the Runner sets it.
	Stages *stagetime.Tracker

	mu       sync.Mutex
	dlq      map[codecs.Reason]int64
	latency  func(time.Duration)
	assigned map[int32]bool
	registry codecs.RegistryReporter // the format's, when it reads schemas from a registry
}

// Registry returns the state of the format's schema registry, and false when the format reads
// no schemas from one.
func (s *Stats) Registry() (codecs.RegistryState, bool) {
	s.mu.Lock()
	r := s.registry
	s.mu.Unlock()
	if r == nil {
		return codecs.RegistryState{}, false
	}
	return r.RegistryState(), true
}

// ReportRegistry makes Registry report format's registry, if it has one.
func (s *Stats) ReportRegistry(format codecs.Format) {
	r, ok := format.(codecs.RegistryReporter)
	if !ok {
		return
	}
	s.mu.Lock()
	s.registry = r
	s.mu.Unlock()
}

// assign records the partitions the group assigned in its latest session.
func (s *Stats) assign(a map[int32]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assigned = make(map[int32]bool, len(a))
	for p := range a {
		s.assigned[p] = true
	}
}

// Assigned reports whether the latest session assigned partition p to this replica.
func (s *Stats) Assigned(p int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assigned[p]
}

// NewStats returns empty stats.
func NewStats() *Stats {
	return &Stats{dlq: map[codecs.Reason]int64{}, Alignment: consumergroup.NewStats()}
}

func (s *Stats) deadLettered(r codecs.Reason) {
	s.mu.Lock()
	if s.dlq == nil {
		s.dlq = map[codecs.Reason]int64{}
	}
	s.dlq[r]++
	s.mu.Unlock()
}

// DeadLettered returns the dead-letter counts by reason.
func (s *Stats) DeadLettered() map[codecs.Reason]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[codecs.Reason]int64, len(s.dlq))
	for k, v := range s.dlq {
		out[k] = v
	}
	return out
}

// OnLatency registers fn to observe each input's time from its record timestamp to its output.
// Call it before the processor runs.
func (s *Stats) OnLatency(fn func(time.Duration)) { s.latency = fn }

func (s *Stats) observeLatency(d time.Duration) {
	if s.latency != nil {
		s.latency(d)
	}
}

// rateLimiter lets n events through per period and counts the ones it held back.
type rateLimiter struct {
	mu         sync.Mutex
	n          int
	period     time.Duration
	start      time.Time
	used       int
	suppressed int
}

func newRateLimiter(n int, period time.Duration) *rateLimiter {
	return &rateLimiter{n: n, period: period}
}

// allow reports whether an event may pass and how many were held back since the last one passed.
func (r *rateLimiter) allow() (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.start) >= r.period {
		r.start, r.used = now, 0
	}
	if r.used >= r.n {
		r.suppressed++
		return 0, false
	}
	r.used++
	s := r.suppressed
	r.suppressed = 0
	return s, true
}
