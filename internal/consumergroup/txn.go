package consumergroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// Committer makes what a session's records produced visible together with their offsets, as
// one unit (exactly-once). A session calls Begin, then Commit or Abort, then Begin again, and
// so on; it never produces between a Commit or Abort and the next Begin.
type Committer interface {
	// Begin opens the next unit of the session that owns partitions.
	Begin(partitions []int32) error
	// Commit ends the unit: what it produced becomes visible with offsets, the next offset to
	// read per topic and partition, or nothing does. meta fences the commit by the session's
	// generation and member id, so a replica that lost its partitions cannot commit.
	Commit(ctx context.Context, meta *sarama.ConsumerGroupMetadata, offsets map[string]map[int32]int64) error
	// Abort ends the unit with nothing of it visible.
	Abort() error
	// Failed is closed once the open unit can no longer commit (a write of it failed): a
	// commit stops waiting for goka's marks, which will not come.
	Failed() <-chan struct{}
}

// DefaultCommitInterval is Config.CommitInterval's default: Kafka Streams' commit interval
// under exactly-once.
const DefaultCommitInterval = 100 * time.Millisecond

// CommitTimeout is Config.CommitTimeout's default for a group whose rebalance timeout is
// rebalance: a commit's drain and its request together take at most half of it.
func CommitTimeout(rebalance time.Duration) time.Duration { return rebalance / 4 }

type topicPartition struct {
	topic     string
	partition int32
}

// transaction runs one session's units. Records reach goka only through forward, which holds
// them while a commit is under way; goka's offset marks arrive through the session wrapper. A
// commit stops the forwarding, waits until goka has marked every record it was handed (each
// mark follows the writes of its record), and commits the marked offsets with those writes.
type transaction struct {
	c          Committer
	meta       *sarama.ConsumerGroupMetadata
	partitions []int32
	interval   time.Duration
	drain      time.Duration // bounds a commit's wait for goka's marks
	log        *slog.Logger
	stats      *Stats
	// end ends the session with a cause: sarama's session and goka's partition processors.
	end context.CancelCauseFunc

	mu        sync.Mutex
	cond      *sync.Cond
	paused    bool
	open      bool // a unit is open
	err       error
	forwarded map[topicPartition]int64 // next offset after the last record handed to goka
	marked    map[topicPartition]int64 // next offset goka marked
	committed map[topicPartition]int64

	loopDone chan struct{}
}

func newTransaction(c Committer, meta *sarama.ConsumerGroupMetadata, partitions []int32, interval, drain time.Duration,
	stats *Stats, log *slog.Logger, end context.CancelCauseFunc) *transaction {
	t := &transaction{c: c, meta: meta, partitions: partitions, interval: interval, drain: drain, stats: stats, log: log, end: end,
		forwarded: map[topicPartition]int64{}, marked: map[topicPartition]int64{}, committed: map[topicPartition]int64{},
		loopDone: make(chan struct{})}
	t.cond = sync.NewCond(&t.mu)
	return t
}

// begin opens the session's first unit.
func (t *transaction) begin() error {
	if err := t.c.Begin(t.partitions); err != nil {
		return fmt.Errorf("exactly-once: %w", err)
	}
	t.open = true
	return nil
}

// wake makes every waiter look again, when ctx ends.
func (t *transaction) wake(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() {
		t.mu.Lock()
		t.cond.Broadcast()
		t.mu.Unlock()
	})
}

// forward hands m to goka on out, once no commit is under way. It returns false, with m not
// handed on, when ctx ended first.
func (t *transaction) forward(ctx context.Context, m *sarama.ConsumerMessage, out chan<- *sarama.ConsumerMessage) bool {
	tp := topicPartition{m.Topic, m.Partition}
	t.mu.Lock()
	for t.paused && ctx.Err() == nil {
		t.cond.Wait()
	}
	if ctx.Err() != nil {
		t.mu.Unlock()
		return false
	}
	prev, had := t.forwarded[tp]
	t.forwarded[tp] = m.Offset + 1
	t.mu.Unlock()
	select {
	case out <- m:
		return true
	case <-ctx.Done():
		t.mu.Lock()
		if t.forwarded[tp] == m.Offset+1 {
			if had {
				t.forwarded[tp] = prev
			} else {
				delete(t.forwarded, tp)
			}
		}
		t.mu.Unlock()
		return false
	}
}

// mark notes goka's mark of offset, the next to read of topic/partition.
func (t *transaction) mark(topic string, partition int32, offset int64) {
	tp := topicPartition{topic, partition}
	t.mu.Lock()
	if offset > t.marked[tp] {
		t.marked[tp] = offset
	}
	if t.paused {
		t.cond.Broadcast()
	}
	t.mu.Unlock()
}

// caughtUp reports whether goka marked every record it was handed; t.mu is held.
func (t *transaction) caughtUp() bool {
	for tp, next := range t.forwarded {
		if t.marked[tp] < next {
			return false
		}
	}
	return true
}

// pending reports whether records were handed on since the last commit; t.mu is held.
func (t *transaction) pending() bool {
	for tp, next := range t.forwarded {
		if t.committed[tp] < next {
			return true
		}
	}
	return false
}

var errNotDrained = errors.New("goka did not finish the records it was handed")

// commit ends the open unit with what goka marked and, unless last, opens the next one.
// Nothing is handed to goka while it runs.
func (t *transaction) commit(ctx context.Context, last bool) error {
	began := time.Now()
	t.mu.Lock()
	if !t.pending() && !last {
		t.mu.Unlock()
		return nil
	}
	t.paused = true
	defer func() {
		t.mu.Lock()
		t.paused = false
		t.cond.Broadcast()
		t.mu.Unlock()
	}()
	wctx, cancel := context.WithTimeout(ctx, t.drain)
	defer cancel()
	go func() {
		select {
		case <-t.c.Failed():
			cancel()
		case <-wctx.Done():
		}
	}()
	stop := t.wake(wctx)
	for !t.caughtUp() && wctx.Err() == nil {
		t.cond.Wait()
	}
	stop()
	if !t.caughtUp() {
		t.mu.Unlock()
		select {
		case <-t.c.Failed():
			return errors.New("exactly-once commit: a write of the transaction failed")
		default:
		}
		return fmt.Errorf("exactly-once commit: %w within %s", errNotDrained, t.drain)
	}
	offsets := map[string]map[int32]int64{}
	for tp, next := range t.marked {
		if t.committed[tp] != next {
			if offsets[tp.topic] == nil {
				offsets[tp.topic] = map[int32]int64{}
			}
			offsets[tp.topic][tp.partition] = next
		}
	}
	drained := time.Since(began)
	t.mu.Unlock()

	t.open = false
	// Not cut short by the session's end: a rebalance that begins leaves the generation valid
	// until this member rejoins, so the commit may still go through, and the broker, not a
	// cancelled request, says whether it did.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), t.drain)
	defer ccancel()
	if err := t.c.Commit(cctx, t.meta, offsets); err != nil {
		if t.stats != nil {
			t.stats.CommitsFailed.Add(1)
		}
		return fmt.Errorf("exactly-once commit (generation %d): %w", t.meta.GenerationID, err)
	}
	t.mu.Lock()
	for topic, ps := range offsets {
		for p, next := range ps {
			t.committed[topicPartition{topic, p}] = next
		}
	}
	t.mu.Unlock()
	if t.stats != nil {
		t.stats.commitDone(time.Since(began), drained)
	}
	if last {
		return nil
	}
	return t.begin()
}

// run commits every interval until ctx ends; a failed commit ends the session with its error.
func (t *transaction) run(ctx context.Context) {
	defer close(t.loopDone)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := t.commit(ctx, false); err != nil {
			if ctx.Err() != nil && t.open {
				return // the session ended while goka finished its records: the last commit takes over
			}
			t.fail(err)
			return
		}
	}
}

// fail ends the session with err; its open unit is aborted when the session ends.
func (t *transaction) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
	t.end(err)
}

// finish ends the session's last unit once its stream has stopped: committed if nothing
// failed and goka finished every record handed to it, aborted otherwise.
func (t *transaction) finish() error {
	<-t.loopDone
	t.mu.Lock()
	err := t.err
	t.mu.Unlock()
	if err == nil && t.open {
		ctx, cancel := context.WithTimeout(context.Background(), t.drain)
		err = t.commit(ctx, true)
		cancel()
		if err == nil {
			return nil
		}
	}
	if err != nil {
		t.log.Warn("exactly-once commit failed: aborting the session's transaction", "generation", t.meta.GenerationID, "error", err.Error())
	}
	if aerr := t.c.Abort(); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// txnSession is the session goka sees under exactly-once. Its offset marks go through the
// session's watermark to the transaction, not to sarama, whose offset commits would not be
// part of it; its context ends only after the session's last commit, so goka's partition
// processors finish the records they were handed before it.
type txnSession struct {
	markSession
	ctx context.Context
}

func (s *txnSession) Context() context.Context { return s.ctx }

// ResetOffset is refused: offsets move only with a transaction.
func (s *txnSession) ResetOffset(string, int32, int64, string) {}

// Commit does nothing: offsets are committed with the transactions.
func (s *txnSession) Commit() {}

func claimedPartitions(sess sarama.ConsumerGroupSession) []int32 {
	seen := map[int32]bool{}
	var out []int32
	for _, ps := range sess.Claims() {
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
