package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/topology"
)

// ErrFenced means the producer's epoch is gone: another producer started with its
// transactional id (two replicas share an --instance-id or a state directory's id), or the
// broker aborted its transaction for outliving its timeout.
var ErrFenced = errors.New("producer fenced")

// Transactional is a Producer whose records go into Kafka transactions: everything emitted
// between Begin and Commit becomes visible at once, together with the consumer offsets Commit
// is given, or not at all.
//
// Its offsets go into the transaction with the generation and member id of the consumer group
// session goka runs (KIP-447), so the broker refuses the commit of a replica that lost its
// partitions. franz-go's own transactional offset commit (GroupTransactSession) is bound to
// franz-go's group consumer, which goka does not run; sarama's producer takes any session's
// metadata (AddOffsetsToTxnWithGroupMetadata) but was the slower of the two under the
// benchmark (docs/performance.md). So the records and the transaction's end go through
// franz-go, and the offsets through the two requests a transactional offset commit is made of:
// AddOffsetsToTxn to the transaction coordinator, TxnOffsetCommit to the group coordinator.
type Transactional struct {
	*Producer
	id  string
	adm *kadm.Client

	// failed is closed at the first record that fails: the open transaction cannot commit.
	failed     chan struct{}
	failedOnce sync.Once

	mu       sync.Mutex
	topicIDs map[string][16]byte
	// sentAtBegin is the producer's record count when the open transaction began, and
	// offsetsAdded says AddOffsetsToTxn added the group's offsets to it.
	sentAtBegin  int64
	offsetsAdded bool
}

// offsetsOnly says the open transaction holds offsets and no record: franz-go, which did not add
// them, would not end it.
func (t *Transactional) offsetsOnly() bool { return t.offsetsAdded && t.sent.Load() == t.sentAtBegin }

// NewTransactional returns a transactional producer with id. Its start fences any earlier
// producer with the same id and aborts the transaction that one left open. No transaction is
// open until Begin.
func NewTransactional(ctx context.Context, kc kafkaconf.Config, id string, timeout time.Duration) (*Transactional, error) {
	// A transaction begins right after the one before ended, while the coordinator still
	// writes that one's markers and answers CONCURRENT_TRANSACTIONS: franz-go's 20 ms backoff
	// would be a fifth of a 100 ms commit interval.
	p, err := New(kc, kgo.TransactionalID(id), kgo.TransactionTimeout(timeout), kgo.ConcurrentTransactionsBackoff(2*time.Millisecond))
	if err != nil {
		return nil, err
	}
	t := &Transactional{Producer: p, id: id, adm: kadm.NewClient(p.cl), failed: make(chan struct{}), topicIDs: map[string][16]byte{}}
	p.onError = func() { t.failedOnce.Do(func() { close(t.failed) }) }
	if _, _, err := p.cl.ProducerID(ctx); err != nil {
		p.cl.Close()
		return nil, fmt.Errorf("transactional producer %s: the brokers cannot start a transaction "+
			"(transactions need transaction.state.log.replication.factor and min.isr the cluster can meet): %w", id, err)
	}
	return t, nil
}

// ID returns the transactional id.
func (t *Transactional) ID() string { return t.id }

// Failed is closed once a record failed: the open transaction can only abort.
func (t *Transactional) Failed() <-chan struct{} { return t.failed }

// Begin opens a transaction.
func (t *Transactional) Begin() error {
	if err := t.cl.BeginTransaction(); err != nil {
		return t.wrap("begin transaction", err)
	}
	t.sentAtBegin, t.offsetsAdded = t.sent.Load(), false
	return nil
}

// Commit adds offsets (the next offset to read per topic and partition) to the open
// transaction, fenced by the consumer group session in meta, and commits it. It first waits
// for every record sent in it to be written.
func (t *Transactional) Commit(ctx context.Context, offsets map[string]map[int32]int64, meta *sarama.ConsumerGroupMetadata) error {
	if err := t.cl.Flush(ctx); err != nil {
		return t.wrap("flush transaction", err)
	}
	if len(offsets) > 0 {
		if err := t.commitOffsets(ctx, offsets, meta); err != nil {
			return err
		}
		if t.offsetsOnly() {
			// franz-go ends a transaction only when it wrote to it itself (records, or
			// offsets through its own group session); one that holds only the offsets added
			// above it leaves open, and the coordinator would abort it at its timeout, fencing
			// this producer. So it is ended here, and franz-go's end below only resets its
			// own state.
			if err := t.endTxn(ctx, true); err != nil {
				return err
			}
		}
	}
	if err := t.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return t.wrap("commit transaction", err)
	}
	return nil
}

// endTxn ends the open transaction at its coordinator, committing or aborting it. It speaks
// EndTxn version 4: from version 5 (KIP-890) the coordinator bumps the producer's epoch as it
// ends a transaction and tells the client, and franz-go, which did not send this request, would
// go on with the old epoch and be fenced.
func (t *Transactional) endTxn(ctx context.Context, commit bool) error {
	id, epoch, err := t.cl.ProducerID(ctx)
	if err != nil {
		return t.wrap("producer id", err)
	}
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = t.id, id, epoch, commit
	if err := retryCoordinator(ctx, func() error {
		// The request goes to the coordinator by hand: franz-go routes only its own request
		// types to a coordinator, not this one pinned to version 4.
		find := kmsg.NewPtrFindCoordinatorRequest()
		find.CoordinatorKey, find.CoordinatorType, find.CoordinatorKeys = t.id, 1, []string{t.id}
		found, err := find.RequestWith(ctx, t.cl)
		if err != nil {
			return err
		}
		node, code := found.NodeID, found.ErrorCode
		if len(found.Coordinators) > 0 {
			node, code = found.Coordinators[0].NodeID, found.Coordinators[0].ErrorCode
		}
		if err := kerr.ErrorForCode(code); err != nil {
			return err
		}
		resp, err := t.cl.Broker(int(node)).Request(ctx, endTxnV4{req})
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.(*kmsg.EndTxnResponse).ErrorCode)
	}); err != nil {
		return t.wrap("end a transaction of offsets only", err)
	}
	return nil
}

// endTxnV4 is an EndTxn request that franz-go sends at version 4 at most.
type endTxnV4 struct{ *kmsg.EndTxnRequest }

func (endTxnV4) MaxVersion() int16 { return 4 }

// Abort drops what the open transaction buffered and aborts it: nothing sent in it becomes
// visible to read_committed readers.
func (t *Transactional) Abort(ctx context.Context) error {
	if err := t.cl.AbortBufferedRecords(ctx); err != nil {
		return t.wrap("abort buffered records", err)
	}
	if t.offsetsOnly() {
		if err := t.endTxn(ctx, false); err != nil {
			return err
		}
	}
	if err := t.cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return t.wrap("abort transaction", err)
	}
	return nil
}

// commitOffsets makes offsets part of the open transaction, by meta's group session.
func (t *Transactional) commitOffsets(ctx context.Context, offsets map[string]map[int32]int64, meta *sarama.ConsumerGroupMetadata) error {
	id, epoch, err := t.cl.ProducerID(ctx)
	if err != nil {
		return t.wrap("producer id", err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = t.id, id, epoch, meta.GroupID
	// The coordinator answers CONCURRENT_TRANSACTIONS while it still writes the markers of
	// the transaction before: a matter of milliseconds.
	if err := retryCoordinator(ctx, func() error {
		resp, err := add.RequestWith(ctx, t.cl)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	}); err != nil {
		return t.wrap("add offsets to transaction", err)
	}
	t.offsetsAdded = true

	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = t.id, meta.GroupID, id, epoch
	req.Generation, req.MemberID, req.InstanceID = meta.GenerationID, meta.MemberID, meta.GroupInstanceID
	mark := topology.TransactionalCommitMetadata
	for topic, ps := range offsets {
		tid, err := t.topicID(ctx, topic)
		if err != nil {
			return err
		}
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = topic, tid // the name up to v5, the id from v6
		for p, off := range ps {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, off, -1, &mark
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return retryCoordinator(ctx, func() error {
		resp, err := req.RequestWith(ctx, t.cl)
		if err != nil {
			return t.wrap("commit offsets in transaction", err)
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					// ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID: this replica's
					// session is over, so must its transaction be.
					return t.wrap(fmt.Sprintf("commit offset of %s/%d in transaction (generation %d)", rt.Topic, rp.Partition, meta.GenerationID), err)
				}
			}
		}
		return nil
	})
}

// topicID returns topic's id, which TxnOffsetCommit v6 names topics by.
func (t *Transactional) topicID(ctx context.Context, topic string) ([16]byte, error) {
	t.mu.Lock()
	id, ok := t.topicIDs[topic]
	t.mu.Unlock()
	if ok {
		return id, nil
	}
	md, err := t.adm.ListTopics(ctx, topic)
	if err != nil {
		return id, fmt.Errorf("topic id of %s: %w", topic, err)
	}
	d, ok := md[topic]
	if !ok || d.Err != nil {
		return id, fmt.Errorf("topic id of %s: %v", topic, d.Err)
	}
	t.mu.Lock()
	t.topicIDs[topic] = d.ID
	t.mu.Unlock()
	return d.ID, nil
}

// retryCoordinator calls fn again while the coordinator is busy or moving.
func retryCoordinator(ctx context.Context, fn func() error) error {
	wait := 5 * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) || !coordinatorBusy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

func coordinatorBusy(err error) bool {
	return errors.Is(err, kerr.ConcurrentTransactions) || errors.Is(err, kerr.CoordinatorLoadInProgress) ||
		errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.NotCoordinator)
}

func (t *Transactional) wrap(what string, err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		return fmt.Errorf("%s (transactional id %s): %w: %w", what, t.id, ErrFenced, err)
	}
	return fmt.Errorf("%s (transactional id %s): %w", what, t.id, err)
}

// Close aborts an open transaction, then closes the producer: a transaction is committed only
// by Commit.
func (t *Transactional) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), t.flushTimeout)
	defer cancel()
	err := t.Abort(ctx)
	if errors.Is(err, ErrFenced) {
		err = nil // a fenced producer has nothing left to abort
	}
	t.cl.Close()
	return err
}

// InitCheck starts and closes a transactional producer, to fail fast on a cluster that cannot
// run transactions.
func InitCheck(ctx context.Context, kc kafkaconf.Config, id string, timeout time.Duration) error {
	t, err := NewTransactional(ctx, kc, id, timeout)
	if err != nil {
		return err
	}
	return t.Close()
}
