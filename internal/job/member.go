package job

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/enricher/enricher/internal/assign"
	"github.com/enricher/enricher/internal/members"
	"github.com/enricher/enricher/internal/store"
)

// processIDFile holds the replica's process id in its state directory.
const processIDFile = "process-id"

// ProcessID returns the id persisted in stateDir, made on the first call: the assignor orders
// members by it, so a replica restarted with its state directory takes the same place.
func ProcessID(stateDir string) (string, error) {
	id, err := persistedID(filepath.Join(stateDir, processIDFile), "")
	if err != nil {
		return "", fmt.Errorf("process id: %w", err)
	}
	return id, nil
}

// member is the replica's own side of the assignor (assign.Local): what it reports when it
// joins, and what it does with its assignment. It outlives the processors the Runner builds.
type member struct {
	advert   members.Advert
	process  string
	table    string
	guard    *store.Guard
	replicas *store.Replicas
	log      *slog.Logger

	mu     sync.Mutex
	active []int32
}

// MemberData reports the partitions of the last session and every local store's offset.
func (m *member) MemberData() assign.MemberData {
	m.mu.Lock()
	active := slices.Clone(m.active)
	m.mu.Unlock()
	return assign.MemberData{Advert: m.advert, Process: m.process, Active: active, Stores: m.guard.StoreOffsets(m.table)}
}

// Assigned keeps the standby and warm-up copies the leader planned here.
func (m *member) Assigned(a assign.Assignment) {
	m.mu.Lock()
	m.active = a.Active
	m.mu.Unlock()
	m.log.Info("assignment", "generation", a.Generation, "active", a.Active, "standby", a.Standby, "warmup", a.Warmup)
	m.replicas.Set(a.Standby, a.Warmup)
}

// rejoiner asks the consumer group for a rebalance when a warm-up copy caught up, at most once
// per minGap: copies that catch up together cost one rebalance, and one that catches up just
// after a rebalance asks once the gap has passed.
type rejoiner struct {
	ch     chan struct{}
	minGap time.Duration

	mu    sync.Mutex
	last  time.Time
	timer *time.Timer // a rejoin is scheduled
}

func newRejoiner(minGap time.Duration) *rejoiner {
	return &rejoiner{ch: make(chan struct{}, 1), minGap: minGap}
}

// caughtUp is store.ReplicaConfig.CaughtUp.
func (r *rejoiner) caughtUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer == nil {
		r.timer = time.AfterFunc(max(0, r.minGap-time.Since(r.last)), r.fire)
	}
}

func (r *rejoiner) fire() {
	r.mu.Lock()
	r.timer, r.last = nil, time.Now()
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default: // a rejoin is already pending
	}
}

// changelogBounds reads the changelog's start and end offsets for the assignor.
func changelogBounds(bounds *sharedBounds, table string) func(context.Context) (map[int32]assign.Bounds, error) {
	return func(ctx context.Context) (map[int32]assign.Bounds, error) {
		b, err := bounds.get(ctx, table)
		if err != nil {
			return nil, err
		}
		out := make(map[int32]assign.Bounds, len(b))
		for p, x := range b {
			out[p] = assign.Bounds{Start: x.Start, End: x.End}
		}
		return out, nil
	}
}
