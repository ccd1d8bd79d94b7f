package consumergroup

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeCommitter records the units a transaction runs.
type fakeCommitter struct {
	mu        sync.Mutex
	log       []string
	commits   []map[string]map[int32]int64
	commitErr error
	failed    chan struct{}
}

func newFakeCommitter() *fakeCommitter { return &fakeCommitter{failed: make(chan struct{})} }

func (c *fakeCommitter) note(s string) {
	c.mu.Lock()
	c.log = append(c.log, s)
	c.mu.Unlock()
}

func (c *fakeCommitter) Begin([]int32) error { c.note("begin"); return nil }

func (c *fakeCommitter) Commit(_ context.Context, _ *sarama.ConsumerGroupMetadata, offsets map[string]map[int32]int64) error {
	c.note("commit")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commits = append(c.commits, offsets)
	return c.commitErr
}

func (c *fakeCommitter) Abort() error            { c.note("abort"); return nil }
func (c *fakeCommitter) Failed() <-chan struct{} { return c.failed }

func (c *fakeCommitter) calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// txnRun is a transaction with a stand-in for goka that receives what it is handed.
type txnRun struct {
	tx    *transaction
	c     *fakeCommitter
	out   chan *sarama.ConsumerMessage
	ended chan error
}

func newTxnRun(t *testing.T) *txnRun {
	t.Helper()
	r := &txnRun{c: newFakeCommitter(), out: make(chan *sarama.ConsumerMessage), ended: make(chan error, 1)}
	r.tx = newTransaction(r.c, &sarama.ConsumerGroupMetadata{GroupID: "g", GenerationID: 7}, []int32{3}, time.Hour,
		300*time.Millisecond, NewStats(), slog.New(slog.DiscardHandler), func(err error) { r.ended <- err })
	require.NoError(t, r.tx.begin())
	return r
}

// hand forwards offset of topic to the stand-in and returns it as received.
func (r *txnRun) hand(t *testing.T, topic string, offset int64) *sarama.ConsumerMessage {
	t.Helper()
	got := make(chan *sarama.ConsumerMessage, 1)
	go func() { got <- <-r.out }()
	require.True(t, r.tx.forward(context.Background(), &sarama.ConsumerMessage{Topic: topic, Partition: 3, Offset: offset}, r.out))
	return <-got
}

func TestTransactionCommitsWhatGokaMarked(t *testing.T) {
	r := newTxnRun(t)
	for off := int64(10); off < 13; off++ {
		m := r.hand(t, "input", off)
		r.tx.mark(m.Topic, m.Partition, m.Offset+1)
	}
	m := r.hand(t, "scores", 4)
	r.tx.mark(m.Topic, m.Partition, m.Offset+1)

	require.NoError(t, r.tx.commit(context.Background(), false))
	assert.Equal(t, []string{"begin", "commit", "begin"}, r.c.calls())
	assert.Equal(t, map[string]map[int32]int64{"input": {3: 13}, "scores": {3: 5}}, r.c.commits[0])

	// Nothing handed on since: no unit to commit.
	require.NoError(t, r.tx.commit(context.Background(), false))
	assert.Len(t, r.c.commits, 1)
	// Only what moved goes into the next commit.
	m = r.hand(t, "input", 13)
	r.tx.mark(m.Topic, m.Partition, m.Offset+1)
	require.NoError(t, r.tx.commit(context.Background(), false))
	assert.Equal(t, map[string]map[int32]int64{"input": {3: 14}}, r.c.commits[1])
}

// A commit waits for goka to mark every record it was handed, and holds new records back
// meanwhile: what it commits is exactly what the unit's writes came from.
func TestTransactionCommitWaitsForMarksAndHoldsRecords(t *testing.T) {
	r := newTxnRun(t)
	r.tx.drain = 10 * time.Second
	m := r.hand(t, "input", 0)

	committed := make(chan error, 1)
	go func() { committed <- r.tx.commit(context.Background(), false) }()
	require.Eventually(t, func() bool {
		r.tx.mu.Lock()
		defer r.tx.mu.Unlock()
		return r.tx.paused
	}, time.Second, time.Millisecond)

	held := make(chan bool, 1)
	go func() {
		held <- r.tx.forward(context.Background(), &sarama.ConsumerMessage{Topic: "input", Partition: 3, Offset: 1}, r.out)
	}()
	select {
	case <-committed:
		t.Fatal("the commit did not wait for the mark")
	case <-r.out:
		t.Fatal("a record was handed on during the commit")
	case <-time.After(100 * time.Millisecond):
	}

	r.tx.mark(m.Topic, m.Partition, m.Offset+1)
	require.NoError(t, <-committed)
	assert.Equal(t, map[string]map[int32]int64{"input": {3: 1}}, r.c.commits[0])
	assert.Equal(t, int64(1), (<-r.out).Offset, "the held record goes on after the commit")
	assert.True(t, <-held)
}

func TestTransactionCommitFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(r *txnRun)
		want  string
	}{
		{"goka never marks", func(*txnRun) {}, "did not finish"},
		{"a write failed", func(r *txnRun) { close(r.c.failed) }, "a write of the transaction failed"},
		{"the broker refuses the commit", func(r *txnRun) {
			r.c.commitErr = sarama.ErrIllegalGeneration
			r.tx.mark("input", 3, 1)
		}, "generation 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTxnRun(t)
			r.hand(t, "input", 0)
			tc.setup(r)
			began := time.Now()
			err := r.tx.commit(context.Background(), false)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Less(t, time.Since(began), 2*time.Second)
		})
	}
}

// A failed commit ends the session; its last unit is then aborted, not committed.
func TestTransactionRunEndsSessionOnFailure(t *testing.T) {
	r := newTxnRun(t)
	r.tx.interval = 10 * time.Millisecond
	r.c.commitErr = sarama.ErrUnknownMemberId
	m := r.hand(t, "input", 0)
	r.tx.mark(m.Topic, m.Partition, m.Offset+1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.tx.run(ctx)
	select {
	case err := <-r.ended:
		assert.True(t, errors.Is(err, sarama.ErrUnknownMemberId), err)
	case <-time.After(2 * time.Second):
		t.Fatal("the session was not ended")
	}
	cancel()
	require.Error(t, r.tx.finish())
	assert.Equal(t, []string{"begin", "commit", "abort"}, r.c.calls())
}

// A session that ends cleanly commits its last unit, with what goka marked.
func TestTransactionFinishCommits(t *testing.T) {
	r := newTxnRun(t)
	m := r.hand(t, "input", 5)
	r.tx.mark(m.Topic, m.Partition, m.Offset+1)
	ctx, cancel := context.WithCancel(context.Background())
	go r.tx.run(ctx)
	cancel()
	require.NoError(t, r.tx.finish())
	assert.Equal(t, []string{"begin", "commit"}, r.c.calls())
	assert.Equal(t, map[string]map[int32]int64{"input": {3: 6}}, r.c.commits[0])
}

// goka's marks go through the watermark to the transaction, never to sarama's offset manager.
func TestTxnSessionMarksGoToTheTransaction(t *testing.T) {
	r := newTxnRun(t)
	wm := newWatermark(map[string][]int32{"input": {3}, "scores": {3}}, r.tx.mark, NewStats(), slog.New(slog.DiscardHandler))
	s := &txnSession{markSession: markSession{ConsumerGroupSession: &fakeSession{ctx: context.Background()}, wm: wm}, ctx: context.Background()}
	wm.track("input", 3).deliver(8)
	wm.track("scores", 3).deliver(4)
	s.MarkOffset("input", 3, 9, "")
	s.MarkMessage(&sarama.ConsumerMessage{Topic: "scores", Partition: 3, Offset: 4}, "")
	s.Commit()
	r.tx.mu.Lock()
	defer r.tx.mu.Unlock()
	assert.Equal(t, map[topicPartition]int64{{"input", 3}: 9, {"scores", 3}: 5}, r.tx.marked)
}

// With the watermark in front, an exactly-once commit waits until every record goka was
// handed is done, not only the last one marked: goka marks record 1 before record 0.
func TestTransactionCommitWaitsForEveryRecord(t *testing.T) {
	r := newTxnRun(t)
	r.tx.drain = 10 * time.Second
	wm := newWatermark(map[string][]int32{"input": {3}}, r.tx.mark, NewStats(), slog.New(slog.DiscardHandler))
	tr := wm.track("input", 3)
	for _, off := range []int64{0, 1} {
		tr.deliver(off)
		r.hand(t, "input", off)
	}
	wm.mark("input", 3, 2) // record 1 done; record 0's writes still pending

	committed := make(chan error, 1)
	go func() { committed <- r.tx.commit(context.Background(), false) }()
	select {
	case err := <-committed:
		t.Fatalf("the commit went on while record 0 was pending: %v, %v", err, r.c.commits)
	case <-time.After(100 * time.Millisecond):
	}
	wm.mark("input", 3, 1)
	require.NoError(t, <-committed)
	assert.Equal(t, map[string]map[int32]int64{"input": {3: 2}}, r.c.commits[0])
}

// A session that ends while a commit waits for goka's marks hands the unit to the last
// commit, which still commits it once goka marked its records.
func TestTransactionSessionEndsDuringDrain(t *testing.T) {
	r := newTxnRun(t)
	r.tx.interval = 5 * time.Millisecond
	r.tx.drain = 5 * time.Second
	m := r.hand(t, "input", 0)
	ctx, cancel := context.WithCancel(context.Background())
	go r.tx.run(ctx)
	require.Eventually(t, func() bool {
		r.tx.mu.Lock()
		defer r.tx.mu.Unlock()
		return r.tx.paused
	}, time.Second, time.Millisecond)
	cancel()
	<-r.tx.loopDone
	select {
	case err := <-r.ended:
		t.Fatalf("the session was failed: %v", err)
	default:
	}
	r.tx.mark(m.Topic, m.Partition, m.Offset+1)
	require.NoError(t, r.tx.finish())
	assert.Equal(t, []string{"begin", "commit"}, r.c.calls())
	assert.Equal(t, map[string]map[int32]int64{"input": {3: 1}}, r.c.commits[0])
}

// fakeSession is a sarama session of partition 3 of input and scores.
type fakeSession struct{ ctx context.Context }

func (s *fakeSession) Claims() map[string][]int32 {
	return map[string][]int32{"input": {3}, "scores": {3}}
}
func (s *fakeSession) MemberID() string                            { return "m" }
func (s *fakeSession) GenerationID() int32                         { return 7 }
func (s *fakeSession) MarkOffset(string, int32, int64, string)     {}
func (s *fakeSession) Commit()                                     {}
func (s *fakeSession) ResetOffset(string, int32, int64, string)    {}
func (s *fakeSession) MarkMessage(*sarama.ConsumerMessage, string) {}
func (s *fakeSession) Context() context.Context                    { return s.ctx }

// setupWaiter is a goka handler whose Setup runs until its session's context ends, as goka's
// restore does.
type setupWaiter struct{ sarama.ConsumerGroupHandler }

func (setupWaiter) Setup(s sarama.ConsumerGroupSession) error {
	<-s.Context().Done()
	return nil
}

// Under exactly-once goka's context outlives sarama's session, but not during Setup: a session
// that ends while goka restores its partitions stops the restore.
func TestSessionEndDuringSetupStopsGoka(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cfg := &Config{Commit: newFakeCommitter(), CommitInterval: time.Hour, Logger: slog.New(slog.DiscardHandler), MaxIdle: -1}
	h := &sessionHandler{goka: setupWaiter{}, cfg: cfg, group: "g", end: func(error) {}}
	done := make(chan error, 1)
	go func() { done <- h.Setup(&fakeSession{ctx: ctx}) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("goka's Setup went on after the session ended")
	}
}
