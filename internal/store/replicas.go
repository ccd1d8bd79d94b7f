package store

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionFollower reads the committed records of one changelog partition from offset from on
// until ctx ends, a fetched batch at a time, with the offset the read is through and the
// partition's end as that fetch saw it (changelog.FollowPartition).
type PartitionFollower func(ctx context.Context, topic string, partition int32, from int64, fn func(records []*kgo.Record, through, end int64) error) error

// Replicas keeps this replica's standby and warm-up copies of table partitions it does not own
// current from their changelog (docs/state-assignment.md). A copy is a LevelDB store like any
// other, written in the restore's batches, each with its last offset under goka's offset key;
// when the group makes its partition active here, the Guard takes the copy over (take), checks
// it against the changelog and catches it up from its own offset before goka sees it.
type Replicas struct {
	g      *Guard
	topic  string
	follow PartitionFollower
	// acceptable is how far a warm-up copy may trail the changelog's end and count as caught up.
	acceptable int64
	// caughtUp is called when the warm-up copies are ready to move (see report).
	caughtUp func()
	log      *slog.Logger

	mu     sync.Mutex
	copies map[int32]*replica
	// want is the latest assignment's copies (true for a warm-up); starting, the copies being
	// opened, each closing its channel once open.
	want     map[int32]bool
	starting map[int32]*opening
	// reported says caughtUp was called for the current assignment's warm-ups; closed, that
	// Close was called, so a copy retired from then on is closed, not kept.
	reported, closed bool
}

// reportAfter is how long a warm-up copy that caught up waits for the others before it asks to
// move alone: each move is a rebalance that stops every partition for a moment, so copies that
// catch up close together move in one.
const reportAfter = 3 * time.Second

// replica is one copy being followed.
type replica struct {
	path   string
	cancel context.CancelFunc
	done   chan struct{}
	// db is the copy's database; its follower writes it, under writeMu, until stopped.
	db      *leveldb.DB
	writeMu sync.Mutex
	stopped bool

	mu     sync.Mutex
	warmup bool
	offset int64 // the last changelog offset applied, -1 for none
	end    int64 // the changelog's end as the last fetch saw it, -1 before one
	// caughtUpAt is when this warm-up first came within the acceptable lag; zero before.
	caughtUpAt time.Time
	// started is when the copy began to follow, and applied the records it wrote since: a
	// warm-up's catching up is a joiner's restore, and its rate is logged.
	started time.Time
	applied int64
}

// ReplicaConfig configures the Guard's Replicas.
type ReplicaConfig struct {
	// Topic is the table's changelog topic.
	Topic  string
	Follow PartitionFollower
	// AcceptableLag is how many records a warm-up copy may trail by and count as caught up.
	AcceptableLag int64
	// CaughtUp, if set, is called once per assignment when its warm-up copies are ready to
	// move: every one within AcceptableLag, or one of them for reportAfter.
	CaughtUp func()
}

// Replicas returns the guard's standby and warm-up copies, made on the first call with c.
func (g *Guard) Replicas(c ReplicaConfig) *Replicas {
	g.replicasOnce.Do(func() {
		g.replicas = &Replicas{g: g, topic: c.Topic, follow: c.Follow, acceptable: c.AcceptableLag,
			caughtUp: c.CaughtUp, log: g.log.With("component", "replicas"), copies: map[int32]*replica{},
			starting: map[int32]*opening{}}
	})
	return g.replicas
}

// Set makes standby and warmup the copies this replica keeps: copies no longer wanted stop
// being followed and are kept open a while (keptStores) in case they come back, then closed;
// new ones are opened (or taken from where they were kept) and followed from their offset.
// Set returns once the copies no longer wanted are stopped; the new ones open in the
// background, since Set runs in the group's rebalance, before any partition processes again.
func (r *Replicas) Set(standby, warmup []int32) {
	if r == nil {
		return
	}
	want := map[int32]bool{}
	for _, p := range standby {
		want[p] = false
	}
	for _, p := range warmup {
		want[p] = true
	}
	r.mu.Lock()
	r.want = want
	var removed []*replica
	for p, c := range r.copies {
		if _, ok := want[p]; !ok {
			delete(r.copies, p)
			removed = append(removed, c)
		}
	}
	started := map[int32]*opening{}
	for p, warm := range want {
		if c, ok := r.copies[p]; ok {
			c.mu.Lock()
			c.warmup = warm
			c.mu.Unlock()
			continue
		}
		if _, ok := r.starting[p]; !ok {
			started[p] = &opening{done: make(chan struct{}), cancel: make(chan struct{})}
			r.starting[p] = started[p]
		}
	}
	// A new assignment reports afresh: the rebalance asked for may have come before a copy
	// caught up, or planned its partition elsewhere.
	r.reported = false
	r.mu.Unlock()
	for _, c := range removed {
		r.retire(c)
	}
	for p, o := range started {
		go r.startAsync(p, o)
	}
	// Copies that caught up before this assignment report under it too.
	go r.report()
}

// opening is a copy being opened: done is closed once it is open (or given up), and closing
// cancel before it begins opening gives it up.
type opening struct {
	done, cancel chan struct{}
	cancelOnce   sync.Once
}

// copyOpenDelay is how long a new copy waits before it opens: an assignment that brings copies
// also starts the replica's active partitions, which go first.
const copyOpenDelay = time.Second

// startAsync opens and follows the copy of p, and adds it if p is still wanted when it is open.
func (r *Replicas) startAsync(p int32, o *opening) {
	defer close(o.done)
	select {
	case <-time.After(copyOpenDelay):
	case <-o.cancel:
		r.mu.Lock()
		delete(r.starting, p)
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	warm := r.want[p]
	r.mu.Unlock()
	c, err := r.start(p, warm)
	r.mu.Lock()
	delete(r.starting, p)
	warm, wanted := r.want[p]
	if err == nil && wanted {
		c.mu.Lock()
		c.warmup = warm
		// A warm-up that opens within the acceptable lag is caught up already: with nothing
		// written to its partition it gets no fetch to say so (report, below, moves it).
		if warm && c.caughtUpAt.IsZero() && c.end-(c.offset+1) <= r.acceptable {
			c.caughtUpAt = time.Now()
		}
		c.mu.Unlock()
		r.copies[p] = c
	}
	r.mu.Unlock()
	switch {
	case err != nil:
		// The copy is an optimisation: without it the partition restores when it moves here.
		r.log.Warn("cannot keep a copy of the partition", "partition", p, "error", err.Error())
	case !wanted:
		r.retire(c) // a later assignment no longer wants it
	default:
		r.report()
		time.AfterFunc(reportAfter, r.report) // a copy caught up at its opening waits for the others no longer than that
	}
}

// retire stops following a copy and keeps it open for a while, or closes it.
func (r *Replicas) retire(c *replica) {
	c.stop()
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed || !r.g.kept.keep(c.path, c.db) {
		if err := closeDB(c.db); err != nil {
			r.log.Warn("close a copy no longer wanted", "path", c.path, "error", err.Error())
		}
	}
	r.g.setInUse(c.path, false)
}

// settle gives up a copy of p that has not begun to open, or waits until one that has is open:
// the Guard then opens or takes the store itself, rather than open it beside the copy.
func (r *Replicas) settle(p int32) {
	if r == nil {
		return
	}
	r.mu.Lock()
	o := r.starting[p]
	r.mu.Unlock()
	if o != nil {
		o.cancelOnce.Do(func() { close(o.cancel) })
		<-o.done
	}
}

// start opens the copy of p, checked against the changelog, and follows it.
func (r *Replicas) start(p int32, warm bool) (*replica, error) {
	log := r.log.With("topic", r.topic, "partition", p)
	// The copy writes its database directly: goka's storage over it is made at the hand-over.
	_, db, local, _, end, err := r.g.openChecked(r.topic, p, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(r.g.context())
	// The changelog's end when the copy opened: a copy that opens at the end gets no fetch
	// until something is written, and would otherwise not know it is caught up.
	c := &replica{path: Path(r.g.dir, r.topic, p), cancel: cancel, done: make(chan struct{}), db: db,
		warmup: warm, offset: local, end: end, started: time.Now()}
	go c.follow(ctx, r, p, log)
	log.Info("following a copy of the partition", "role", c.role(), "local_offset", local)
	return c, nil
}

// yieldToWarmups holds a standby copy back while a warm-up copy is catching up, as Kafka Streams
// updates standby tasks only once its active ones run: warm-ups gate a joiner's share of the
// partitions, and standbys that restored beside them (every partition of the group's other
// members, at once) took the CPU and disk they need. On two cores at 10M keys, a warm-up of 833k
// records took 46 s among ten standbys, and 3.3 s with them held back. A standby's lag grows
// meanwhile by what is written to its partition, and it catches up once the warm-ups have.
func (c *replica) yieldToWarmups(ctx context.Context, r *Replicas) error {
	for !c.isWarmup() && r.warmupsPending() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

func (c *replica) isWarmup() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.warmup
}

// warmupsPending says a warm-up copy is being opened or has not caught up yet.
func (r *Replicas) warmupsPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.starting {
		if r.want[p] {
			return true
		}
	}
	for _, c := range r.copies {
		c.mu.Lock()
		pending := c.warmup && c.caughtUpAt.IsZero()
		c.mu.Unlock()
		if pending {
			return true
		}
	}
	return false
}

func (c *replica) role() string {
	if c.warmup {
		return "warm-up"
	}
	return "standby"
}

// follow writes the changelog into the copy until ctx ends, retrying a failed read with
// backoff.
func (c *replica) follow(ctx context.Context, r *Replicas, p int32, log *slog.Logger) {
	defer close(c.done)
	if c.yieldToWarmups(ctx, r) != nil {
		return
	}
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		c.mu.Lock()
		from := c.offset + 1
		c.mu.Unlock()
		err := r.follow(ctx, r.topic, p, from, func(records []*kgo.Record, through, end int64) error {
			if err := c.yieldToWarmups(ctx, r); err != nil {
				return err
			}
			return c.apply(records, through, end, r, p)
		})
		if ctx.Err() != nil {
			return
		}
		log.Warn("following the copy stopped: retrying", "error", err.Error(), "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// apply writes one fetch's records and the offset they read through, in batches as a restore
// writes them, and reports a warm-up copy that came within the acceptable lag.
func (c *replica) apply(records []*kgo.Record, through, end int64, r *Replicas, p int32) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.stopped {
		return context.Canceled // handed over: the database is no longer this copy's
	}
	batch := new(leveldb.Batch)
	for _, rec := range records {
		if rec.Value == nil {
			batch.Delete(rec.Key)
		} else {
			batch.Put(rec.Key, rec.Value)
		}
		if batchFull(batch) {
			putOffset(batch, rec.Offset)
			if err := c.db.Write(batch, nil); err != nil {
				return fmt.Errorf("write the copy of %s/%d: %w", r.topic, p, err)
			}
			batch.Reset()
		}
	}
	putOffset(batch, through)
	if err := c.db.Write(batch, nil); err != nil {
		return fmt.Errorf("write the copy of %s/%d: %w", r.topic, p, err)
	}
	r.g.stats.RecordsReplicated.Add(int64(len(records)))
	c.mu.Lock()
	c.offset, c.end = through, end
	c.applied += int64(len(records))
	applied := c.applied
	first := c.warmup && c.caughtUpAt.IsZero() && end-(through+1) <= r.acceptable
	if first {
		c.caughtUpAt = time.Now()
	}
	c.mu.Unlock()
	if first {
		took := time.Since(c.started)
		r.log.Info("warm-up copy caught up", "topic", r.topic, "partition", p, "offset", through, "end", end,
			"records", applied, "duration", took.Round(time.Millisecond).String(), "records_per_sec", int64(float64(applied)/max(took.Seconds(), 1e-3)))
		r.report()
		time.AfterFunc(reportAfter, r.report)
	}
	return nil
}

// report calls caughtUp once per assignment, when every warm-up copy has caught up or one of
// them caught up reportAfter ago.
func (r *Replicas) report() {
	r.mu.Lock()
	ready, all, warm := false, true, 0
	for _, c := range r.copies {
		c.mu.Lock()
		if c.warmup {
			warm++
			if c.caughtUpAt.IsZero() {
				all = false
			} else if time.Since(c.caughtUpAt) >= reportAfter {
				ready = true
			}
		}
		c.mu.Unlock()
	}
	// Not while copies are being opened: the ones still opening have not caught up.
	fire := warm > 0 && (ready || all) && !r.reported && len(r.starting) == 0 && r.caughtUp != nil
	if fire {
		r.reported = true
	}
	r.mu.Unlock()
	if fire {
		r.caughtUp()
	}
}

// stop ends the copy's follower and waits until its last batch is written.
func (c *replica) stop() {
	c.cancel()
	// No write after this one: the follower's client closes in the background, off the
	// rebalance that hands the database on.
	c.writeMu.Lock()
	c.stopped = true
	c.writeMu.Unlock()
}

// take hands the copy of p over to its new owner, the Guard: following stops, and the
// database is the caller's. It returns nil when there is no copy of p; a nil *Replicas has none.
func (r *Replicas) take(p int32) *leveldb.DB {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	c, ok := r.copies[p]
	delete(r.copies, p)
	r.mu.Unlock()
	if !ok {
		return nil
	}
	c.stop()
	r.log.Info("copy handed over to the partition's processor", "partition", p, "role", c.role(), "offset", c.offsetNow())
	return c.db
}

func (c *replica) offsetNow() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Copy is what a copy reports: its role, the offset it applied and the changelog's end as it
// last saw it (-1 before a fetch).
type Copy struct {
	Warmup      bool
	Offset, End int64
}

// Copies returns every copy this replica follows, by partition.
func (r *Replicas) Copies() map[int32]Copy {
	out := map[int32]Copy{}
	if r == nil {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, c := range r.copies {
		c.mu.Lock()
		out[p] = Copy{Warmup: c.warmup, Offset: c.offset, End: c.end}
		c.mu.Unlock()
	}
	return out
}

// Lookup reads key's score in the copy of partition: Open is false without one. A copy trails
// the owner's store by as much as it lags.
func (r *Replicas) Lookup(partition int32, key string) (Lookup, error) {
	if r == nil {
		return Lookup{}, nil
	}
	r.mu.Lock()
	c, ok := r.copies[partition]
	r.mu.Unlock()
	if !ok {
		return Lookup{}, nil
	}
	v, err := c.db.Get([]byte(key), nil)
	if err == leveldb.ErrNotFound {
		return Lookup{Open: true}, nil
	}
	if err != nil {
		return Lookup{}, err
	}
	e, err := decodeScore(v)
	return Lookup{Open: true, Found: e.present, Score: e.score}, err
}

// Close stops following every copy and closes it, once those being opened are open.
func (r *Replicas) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.want, r.closed = nil, true // copies that finish opening now are closed
	var pending []*opening
	for _, o := range r.starting {
		pending = append(pending, o)
	}
	r.mu.Unlock()
	for _, o := range pending {
		o.cancelOnce.Do(func() { close(o.cancel) })
		<-o.done
	}
	r.mu.Lock()
	copies := r.copies
	r.copies = map[int32]*replica{}
	r.mu.Unlock()
	var first error
	for _, p := range slices.Sorted(maps.Keys(copies)) {
		c := copies[p]
		c.stop()
		<-c.done // the follower's client is closed before the process goes
		if err := closeDB(c.db); err != nil && first == nil {
			first = err
		}
		r.g.setInUse(c.path, false)
	}
	return first
}

// storedOffset reads the changelog offset a database has applied, -1 for none.
func storedOffset(db *leveldb.DB) (int64, error) {
	v, err := db.Get([]byte(offsetKey), nil)
	if err == leveldb.ErrNotFound {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(v), 10, 64)
}
