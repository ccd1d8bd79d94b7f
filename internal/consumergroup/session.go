package consumergroup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
)

// sessionHandler stands between sarama's session and goka's handler. sarama calls ConsumeClaim
// once per topic-partition; goka's ConsumeClaim takes each record's topic from the record and
// finds the partition's processor by the claim's partition, so one merged stream per partition,
// handed to goka once, reaches the right callbacks. A ConsumeClaim that returns ends sarama's
// session, so every call here blocks until its partition's stream ends.
type sessionHandler struct {
	goka       sarama.ConsumerGroupHandler
	cfg        *Config
	client     sarama.Client
	group      string
	instanceID string
	// end ends the current session with a cause (set by Group.Consume before each session).
	end context.CancelCauseFunc

	mu    sync.Mutex
	parts map[int32]*partitionClaims
	// The session's watermark, which every record is noted with before goka sees it, and the
	// session goka sees, whose marks go through it.
	wm *watermark
	gs sarama.ConsumerGroupSession
	// Under exactly-once: the session's transaction and the end of goka's context.
	tx         *transaction
	gokaCancel context.CancelCauseFunc
}

// partitionClaims gathers one partition's claims of a session.
type partitionClaims struct {
	want   int
	claims []sarama.ConsumerGroupClaim
	done   chan struct{} // closed when the merged stream has ended
}

func (h *sessionHandler) aligned() bool { return h.cfg.MaxIdle >= 0 }

// Setup notes which topics each partition is claimed for, then runs goka's Setup.
func (h *sessionHandler) Setup(sess sarama.ConsumerGroupSession) error {
	parts := make(map[int32]*partitionClaims)
	for _, ps := range sess.Claims() {
		for _, p := range ps {
			if parts[p] == nil {
				parts[p] = &partitionClaims{done: make(chan struct{})}
			}
			parts[p].want++
		}
	}
	if h.aligned() {
		for p, pc := range parts {
			if pc.want > 2 {
				return fmt.Errorf("partition %d is claimed for %d topics: timestamp alignment merges two; run with --max-idle -1", p, pc.want)
			}
		}
	}
	h.cfg.Logger.Info("consumer group session", "generation", sess.GenerationID(), "member", sess.MemberID(),
		"partitions", sortedPartitions(parts))
	if h.cfg.Commit == nil {
		// sarama's MarkOffset only moves forward: the watermark passes it a position only once
		// every earlier record of its partition is done.
		wm := newWatermark(sess.Claims(), func(topic string, partition int32, next int64) {
			sess.MarkOffset(topic, partition, next, "")
		}, h.cfg.Stats, h.cfg.Logger)
		gs := &markSession{ConsumerGroupSession: sess, wm: wm}
		h.mu.Lock()
		h.parts, h.wm, h.gs = parts, wm, gs
		h.mu.Unlock()
		return h.goka.Setup(gs)
	}
	return h.setupTransaction(sess, parts)
}

// setupTransaction starts the session's transaction, then runs goka's Setup on the session
// goka sees under exactly-once.
func (h *sessionHandler) setupTransaction(sess sarama.ConsumerGroupSession, parts map[int32]*partitionClaims) error {
	var instance *string
	if h.instanceID != "" {
		instance = &h.instanceID
	}
	// goka's partition processors run on the session's context: they outlive sarama's by the
	// session's last commit, so they finish the records they were handed.
	gctx, gcancel := context.WithCancelCause(context.WithoutCancel(sess.Context()))
	end := h.end
	tx := newTransaction(h.cfg.Commit, sarama.NewConsumerGroupMetadataFromSession(sess, h.group, instance),
		claimedPartitions(sess), h.cfg.CommitInterval, h.cfg.CommitTimeout, h.cfg.Stats, h.cfg.Logger,
		func(err error) { gcancel(err); end(err) })
	if err := tx.begin(); err != nil {
		gcancel(err)
		return err
	}
	// The transaction commits the watermark's positions: what it commits waits for every
	// record goka was handed, not only for the latest one marked.
	wm := newWatermark(sess.Claims(), tx.mark, h.cfg.Stats, h.cfg.Logger)
	gs := &txnSession{markSession: markSession{ConsumerGroupSession: sess, wm: wm}, ctx: gctx}
	h.mu.Lock()
	h.parts, h.wm, h.tx, h.gs, h.gokaCancel = parts, wm, tx, gs, gcancel
	h.mu.Unlock()
	go tx.run(sess.Context())
	// goka's Setup restores the partitions on the session's context: a session that ends
	// during it must stop it, or Setup would restore on while sarama waits for it to return.
	// Only once the partitions process does goka's context outlive sarama's.
	stop := context.AfterFunc(sess.Context(), func() { gcancel(context.Cause(sess.Context())) })
	err := h.goka.Setup(gs)
	stop()
	return err
}

// Cleanup runs goka's Cleanup once every stream of the session has ended; under exactly-once,
// after the session's last commit.
func (h *sessionHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.parts = nil
	tx, gs, gcancel := h.tx, h.gs, h.gokaCancel
	h.wm, h.tx, h.gs, h.gokaCancel = nil, nil, nil, nil
	h.mu.Unlock()
	if gs == nil {
		gs = sess
	}
	if tx == nil {
		return h.goka.Cleanup(gs)
	}
	err := tx.finish()
	gcancel(context.Canceled)
	return errors.Join(err, h.goka.Cleanup(gs))
}

var errGokaStopped = errors.New("its partition processor stopped")

// gatedBuffer is how many records a partition's transaction gate buffers in front of goka.
const gatedBuffer = 256

// toGoka runs goka's ConsumeClaim on claim until it ends. Every record is noted with the
// session's watermark before goka sees it: noted says the merger did so as it received the
// claim's records; otherwise it is done here, on the way to goka, which costs a goroutine hop
// per record (only without timestamp alignment, or for a partition of one topic). Under
// exactly-once each record also goes through the transaction, which holds it back while a
// commit is under way.
func (h *sessionHandler) toGoka(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, noted bool) error {
	h.mu.Lock()
	tx, gs, wm := h.tx, h.gs, h.wm
	h.mu.Unlock()
	var tr *track
	if !noted {
		if tr = wm.track(claim.Topic(), claim.Partition()); tr == nil {
			return fmt.Errorf("claim %s/%d was not in the session's assignment", claim.Topic(), claim.Partition())
		}
	}
	if tx == nil {
		if noted {
			return h.goka.ConsumeClaim(gs, claim)
		}
		return h.handOn(sess, gs, claim, tr)
	}
	// Buffered, so records go on in batches: goka reads the buffer to its end even after the
	// session ended, because its context lasts until the session's last commit.
	gated := &mergedClaim{ConsumerGroupClaim: claim, out: make(chan *sarama.ConsumerMessage, gatedBuffer)}
	ctx, cancel := context.WithCancel(sess.Context())
	done := make(chan error, 1)
	var closing atomic.Bool
	go func() {
		err := h.goka.ConsumeClaim(gs, gated)
		if !closing.Load() {
			// goka stops a partition on its own only when it fails: the records it was handed
			// will not be marked, so the transaction cannot commit.
			tx.fail(fmt.Errorf("goka stopped consuming partition %d: %w", claim.Partition(), errors.Join(err, errGokaStopped)))
		}
		cancel()
		done <- err
	}()
	in := claim.Messages()
forward:
	for {
		select {
		case m, ok := <-in:
			if !ok {
				break forward
			}
			if tr != nil {
				tr.deliver(m.Offset)
				h.cfg.Stages.Received(m.Topic, m.Partition, m.Offset)
			}
			if !tx.forward(ctx, m, gated.out) {
				break forward
			}
			h.cfg.Stages.Handed(m.Topic, m.Partition, m.Offset)
		case <-ctx.Done():
			break forward
		}
	}
	closing.Store(true)
	close(gated.out)
	return <-done
}

// handOn runs goka's ConsumeClaim on claim's records, noting each with tr on its way: goka
// never sees a record the watermark does not know.
func (h *sessionHandler) handOn(sess, gs sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, tr *track) error {
	noted := &mergedClaim{ConsumerGroupClaim: claim, out: make(chan *sarama.ConsumerMessage, gatedBuffer)}
	gokaDone := make(chan struct{})
	var gokaErr error
	go func() {
		defer close(gokaDone)
		gokaErr = h.goka.ConsumeClaim(gs, noted)
	}()
	ctx, in := sess.Context(), claim.Messages()
forward:
	for {
		select {
		case m, ok := <-in:
			if !ok {
				break forward
			}
			tr.deliver(m.Offset)
			h.cfg.Stages.Received(m.Topic, m.Partition, m.Offset)
			select {
			case noted.out <- m:
				h.cfg.Stages.Handed(m.Topic, m.Partition, m.Offset)
			case <-gokaDone:
				break forward
			case <-ctx.Done():
				break forward
			}
		case <-gokaDone:
			break forward
		case <-ctx.Done():
			break forward
		}
	}
	close(noted.out)
	<-gokaDone
	return gokaErr
}

// ConsumeClaim hands the claim to goka as it is when alignment is off or the partition has one
// topic. Otherwise the last of a partition's claims to arrive runs the merge and goka's
// ConsumeClaim on the merged stream, and the others wait for it to end.
func (h *sessionHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	if !h.aligned() {
		return h.toGoka(sess, claim, false)
	}
	h.mu.Lock()
	pc := h.parts[claim.Partition()]
	if pc == nil {
		h.mu.Unlock()
		return fmt.Errorf("claim %s/%d was not in the session's assignment", claim.Topic(), claim.Partition())
	}
	pc.claims = append(pc.claims, claim)
	last := len(pc.claims) == pc.want
	h.mu.Unlock()
	if pc.want == 1 {
		defer close(pc.done)
		return h.toGoka(sess, claim, false)
	}
	if !last {
		select {
		case <-pc.done:
		case <-sess.Context().Done():
		}
		return nil
	}
	defer close(pc.done)
	return h.merge(sess, pc.claims)
}

// merge runs goka's ConsumeClaim on the merged stream of claims until it ends.
func (h *sessionHandler) merge(sess sarama.ConsumerGroupSession, claims []sarama.ConsumerGroupClaim) error {
	sort.Slice(claims, func(i, j int) bool { return claims[i].Topic() < claims[j].Topic() })
	next := make([]int64, len(claims))
	for i, c := range claims {
		n, err := h.startOffset(c)
		if err != nil {
			return err
		}
		next[i] = n
	}
	m := newMerger(claims, next, h.cfg.First, h.cfg.MaxIdle, h.cfg.LagWait, h.cfg.Stats.Partition(claims[0].Partition()), h.cfg.Logger)
	m.stages = h.cfg.Stages
	h.mu.Lock()
	wm := h.wm
	h.mu.Unlock()
	// The merger notes each record with the watermark as it receives it, the one place every
	// record of a merged partition passes, so the merged stream goes to goka without a hop.
	if err := m.noteWith(wm); err != nil {
		return err
	}
	merged := &mergedClaim{ConsumerGroupClaim: claims[0], out: make(chan *sarama.ConsumerMessage, 256)}
	gokaDone := make(chan struct{})
	var gokaErr error
	go func() {
		defer close(gokaDone)
		gokaErr = h.toGoka(sess, merged, true)
	}()
	m.run(sess.Context(), merged.out, gokaDone)
	close(merged.out)
	<-gokaDone
	return gokaErr
}

// startOffset resolves the offset a claim starts at, for its lag: sarama starts a partition
// without a committed offset at OffsetOldest or OffsetNewest.
func (h *sessionHandler) startOffset(c sarama.ConsumerGroupClaim) (int64, error) {
	switch off := c.InitialOffset(); off {
	case sarama.OffsetOldest, sarama.OffsetNewest:
		n, err := h.client.GetOffset(c.Topic(), c.Partition(), off)
		if err != nil {
			return 0, fmt.Errorf("start offset of %s/%d: %w", c.Topic(), c.Partition(), err)
		}
		return n, nil
	default:
		return off, nil
	}
}

// mergedClaim is a partition's claim as goka sees it: the first topic's claim, with the merged
// stream for its messages.
type mergedClaim struct {
	sarama.ConsumerGroupClaim
	out chan *sarama.ConsumerMessage
}

func (c *mergedClaim) Messages() <-chan *sarama.ConsumerMessage { return c.out }

func sortedPartitions(parts map[int32]*partitionClaims) []int32 {
	out := make([]int32, 0, len(parts))
	for p := range parts {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
