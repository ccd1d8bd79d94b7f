package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// memLog is a changelog in memory: a follower that serves its records and waits for more.
type memLog struct {
	mu      sync.Mutex
	records map[int32][]*kgo.Record
	grew    chan struct{}
}

func newMemLog() *memLog {
	return &memLog{records: map[int32][]*kgo.Record{}, grew: make(chan struct{})}
}

func (l *memLog) append(p int32, n int) {
	l.mu.Lock()
	for i := 0; i < n; i++ {
		off := int64(len(l.records[p]))
		l.records[p] = append(l.records[p], &kgo.Record{Key: []byte(fmt.Sprintf("k%d", off)),
			Value: []byte(fmt.Sprintf(`{"key":"k%d","score":%d}`, off, off)), Offset: off, Partition: p})
	}
	close(l.grew)
	l.grew = make(chan struct{})
	l.mu.Unlock()
}

func (l *memLog) bounds(_ context.Context, _ string, p int32) (int64, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return 0, int64(len(l.records[p])), nil
}

func (l *memLog) follow(ctx context.Context, _ string, p int32, from int64, fn func([]*kgo.Record, int64, int64) error) error {
	for {
		l.mu.Lock()
		recs, grew := l.records[p], l.grew
		l.mu.Unlock()
		if from < int64(len(recs)) {
			batch := recs[from:min(int64(len(recs)), from+3000)]
			if err := fn(batch, batch[len(batch)-1].Offset, int64(len(recs))); err != nil {
				return err
			}
			from = batch[len(batch)-1].Offset + 1
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-grew:
		}
	}
}

// read is the fast restore's reader over the log: records [from, end).
func (l *memLog) read(_ context.Context, _ string, p int32, from, end int64, fn func([]*kgo.Record, int64) error) error {
	l.mu.Lock()
	recs := l.records[p][from:end]
	l.mu.Unlock()
	if len(recs) == 0 {
		return nil
	}
	return fn(recs, recs[len(recs)-1].Offset)
}

func newReplicaGuard(t *testing.T, log *memLog, caughtUp func()) (*Guard, *Replicas) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := NewGuard(context.Background(), Config{Dir: t.TempDir(), Offsets: log.bounds, Read: log.read, Stats: &Stats{},
		Logger: quiet, KeepFor: time.Minute})
	require.NoError(t, err)
	r := g.Replicas(ReplicaConfig{Topic: "t-table", Follow: log.follow, AcceptableLag: 10, CaughtUp: caughtUp})
	t.Cleanup(func() {
		assert.NoError(t, r.Close())
		assert.NoError(t, g.CloseKept())
	})
	return g, r
}

// Copies follow their changelog; a warm-up reports once when it comes within the acceptable
// lag; a standby never does.
func TestReplicasFollowTheirChangelog(t *testing.T) {
	log := newMemLog()
	log.append(0, 5000)
	log.append(1, 100)
	reported := make(chan struct{}, 4)
	_, r := newReplicaGuard(t, log, func() { reported <- struct{}{} })
	r.Set([]int32{1}, []int32{0})

	require.Eventually(t, func() bool {
		c := r.Copies()
		return c[0].Offset == 4999 && c[1].Offset == 99
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[int32]Copy{0: {Warmup: true, Offset: 4999, End: 5000}, 1: {Offset: 99, End: 100}}, r.Copies())
	select {
	case <-reported:
	case <-time.After(5 * time.Second):
		t.Fatal("the warm-up copy never reported it caught up")
	}
	log.append(0, 50)
	require.Eventually(t, func() bool { return r.Copies()[0].Offset == 5049 }, 10*time.Second, 10*time.Millisecond)
	assert.Empty(t, reported, "reported once per assignment")
	r.Set([]int32{1}, []int32{0})
	select {
	case <-reported:
	case <-time.After(5 * time.Second):
		t.Fatal("a new assignment with the copy still a warm-up did not report again")
	}

	l, err := r.Lookup(1, "k42")
	require.NoError(t, err)
	assert.Equal(t, Lookup{Open: true, Found: true, Score: 42}, l)
	l, err = r.Lookup(1, "nobody")
	require.NoError(t, err)
	assert.Equal(t, Lookup{Open: true}, l)
	l, err = r.Lookup(2, "k1")
	require.NoError(t, err)
	assert.False(t, l.Open, "no copy of partition 2")
}

// When its partition becomes active here, goka's store is the copy: caught up from its own
// offset, nothing restored from the start.
func TestReplicaHandedOverToGoka(t *testing.T) {
	log := newMemLog()
	log.append(3, 2000)
	g, r := newReplicaGuard(t, log, nil)
	r.Set([]int32{3}, nil)
	require.Eventually(t, func() bool { return r.Copies()[3].Offset == 1999 }, 10*time.Second, 10*time.Millisecond)
	log.append(3, 10) // written while the partition moves

	st, err := g.Builder()("t-table", 3)
	require.NoError(t, err)
	rs := st.(*restoringStore)
	assert.Empty(t, r.Copies(), "the copy is no longer followed")
	assert.GreaterOrEqual(t, rs.local, int64(1999), "goka's store is the copy")
	off, err := rs.GetOffset(-1)
	require.NoError(t, err)
	assert.Equal(t, int64(2009), off, "the gap is caught up before goka sees the store")
	assert.Equal(t, 2009-rs.local, rs.restored, "only the gap is restored")
	require.NoError(t, rs.MarkRecovered())
	require.NoError(t, st.Close())

	// Kept open by goka's close, then a standby copy again: followed from where it is.
	assert.Equal(t, map[int32]int64{3: 2009}, g.StoreOffsets("t-table"))
	r.Set([]int32{3}, nil)
	log.append(3, 1)
	require.Eventually(t, func() bool { return r.Copies()[3].Offset == 2010 }, 10*time.Second, 10*time.Millisecond)
}

// The offsets a member reports: copies, kept stores and closed stores on disk, never a
// quarantined one.
func TestStoreOffsets(t *testing.T) {
	log := newMemLog()
	log.append(0, 10)
	log.append(1, 20)
	g, r := newReplicaGuard(t, log, nil)
	r.Set([]int32{0, 1}, nil)
	require.Eventually(t, func() bool { c := r.Copies(); return c[0].Offset == 9 && c[1].Offset == 19 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, map[int32]int64{0: 9, 1: 19}, g.StoreOffsets("t-table"))
	r.Set(nil, nil) // both kept open
	assert.Equal(t, map[int32]int64{0: 9, 1: 19}, g.StoreOffsets("t-table"))
	require.NoError(t, g.CloseKept())
	_, err := quarantine(Path(g.dir, "t-table", 1), "stale")
	require.NoError(t, err)
	assert.Equal(t, map[int32]int64{0: 9}, g.StoreOffsets("t-table"), "a closed store is read off disk; a quarantined one never counts")
	assert.Empty(t, g.StoreOffsets("other-table"))
}

// Warm-ups that catch up close together move in one rebalance: a copy that caught up waits
// for the others, reportAfter at most.
func TestWarmupsReportTogether(t *testing.T) {
	log := newMemLog()
	log.append(0, 100)
	log.append(1, 100)
	reported := make(chan time.Time, 4)
	_, r := newReplicaGuard(t, log, func() { reported <- time.Now() })
	stuck := func(ctx context.Context, topic string, p int32, from int64, fn func([]*kgo.Record, int64, int64) error) error {
		if p == 1 {
			<-ctx.Done() // partition 1's copy never catches up
			return ctx.Err()
		}
		return log.follow(ctx, topic, p, from, fn)
	}
	r.follow = stuck
	began := time.Now()
	r.Set(nil, []int32{0, 1})
	select {
	case at := <-reported:
		assert.GreaterOrEqual(t, at.Sub(began), reportAfter, "the copy that caught up waited for the other")
	case <-time.After(10 * time.Second):
		t.Fatal("the copy that caught up never asked to move")
	}
}

// A standby copy writes nothing while a warm-up copy is catching up, and catches up once it has.
func TestStandbysYieldToWarmups(t *testing.T) {
	log := newMemLog()
	log.append(0, 100)
	log.append(1, 100)
	_, r := newReplicaGuard(t, log, nil)
	release := make(chan struct{})
	held := func(ctx context.Context, topic string, p int32, from int64, fn func([]*kgo.Record, int64, int64) error) error {
		if p == 0 {
			select { // the warm-up's changelog answers only once released
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return log.follow(ctx, topic, p, from, fn)
	}
	r.follow = held
	r.Set([]int32{1}, []int32{0})
	time.Sleep(copyOpenDelay + 500*time.Millisecond)
	assert.Equal(t, int64(-1), r.Copies()[1].Offset, "the standby read nothing while the warm-up catches up")
	close(release)
	require.Eventually(t, func() bool {
		c := r.Copies()
		return c[0].Offset == 99 && c[1].Offset == 99
	}, 10*time.Second, 10*time.Millisecond, "both copies caught up once the warm-up had")
}
