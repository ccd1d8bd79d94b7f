package producer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/kafkaconf"
	"github.com/enricher/enricher/partition"
	"github.com/enricher/enricher/topology"
)

// ErrFenced means another producer started with this producer's transactional id: two
// replicas share an --instance-id or a state directory's id. It is not retried.
var ErrFenced = errors.New("transactional id taken over by another producer")

// Transactional implements goka.Producer and the Enricher's sink with a transactional sarama
// producer: everything emitted between Begin and Commit becomes visible at once, together with
// the consumer offsets Commit is given, or not at all.
//
// sarama, not franz-go, carries this mode: its producer commits offsets into a transaction with
// the consumer group session's generation and member id (AddOffsetsToTxnWithGroupMetadata,
// KIP-447), so the broker refuses the commit of a replica that lost its partitions. franz-go's
// transactional offset commit is bound to its own group consumer, which goka does not run.
type Transactional struct {
	p      sarama.AsyncProducer
	client sarama.Client
	scheme partition.Scheme
	id     string
	done   sync.WaitGroup
	// failed is closed at the first record that fails: the open transaction cannot commit.
	failed     chan struct{}
	failedOnce sync.Once

	mu     sync.Mutex
	counts map[string]int32 // partitions per topic
}

// delivered is a record's continuation, carried in its Metadata.
type delivered func(*sarama.ProducerMessage, error)

// TransactionalConfig returns the sarama config of a transactional producer with id: every
// record acknowledged by all in-sync replicas, idempotent, one request in flight per broker (a
// requirement of sarama's idempotent producer), records partitioned by the caller.
func TransactionalConfig(kc kafkaconf.Config, id string, timeout time.Duration) (*sarama.Config, error) {
	cfg, err := kc.Sarama()
	if err != nil {
		return nil, err
	}
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 10
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Transaction.ID = id
	cfg.Producer.Transaction.Timeout = timeout
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	// goka's defaults (snappy; a flush per 500 ms, 10,000 records or 64 KB) are replaced by the
	// franz-go producer's: no compression, and a batch sent as soon as the request before it
	// returned, so batches grow with the load without a delay at low load.
	cfg.Producer.Compression = sarama.CompressionNone
	cfg.Producer.Flush.Frequency = kc.Linger
	cfg.Producer.Flush.Messages = 0
	cfg.Producer.Flush.Bytes = 0
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("transactional producer config: %w", err)
	}
	return cfg, nil
}

// NewTransactional starts a transactional producer on cfg (see TransactionalConfig). Starting
// it fences any earlier producer with the same transactional id and aborts its open
// transaction. No transaction is open until Begin.
func NewTransactional(kc kafkaconf.Config, cfg *sarama.Config) (*Transactional, error) {
	client, err := sarama.NewClient(kc.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("transactional producer: %w", err)
	}
	p, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("transactional producer %s: the brokers cannot start a transaction "+
			"(transactions need transaction.state.log.replication.factor and min.isr the cluster can meet): %w",
			cfg.Producer.Transaction.ID, err)
	}
	t := &Transactional{p: p, client: client, scheme: kc.Partitioner, id: cfg.Producer.Transaction.ID, counts: map[string]int32{},
		failed: make(chan struct{})}
	t.done.Add(2)
	go func() {
		defer t.done.Done()
		for m := range p.Successes() {
			m.Metadata.(delivered)(m, nil)
		}
	}()
	go func() {
		defer t.done.Done()
		for e := range p.Errors() {
			t.failedOnce.Do(func() { close(t.failed) })
			e.Msg.Metadata.(delivered)(nil, fmt.Errorf("produce to %s: %w", e.Msg.Topic, t.wrap("write", e.Err)))
		}
	}()
	return t, nil
}

// Failed is closed once a record failed: the open transaction can only abort, and the
// records after it in the processor's partitions will not be written.
func (t *Transactional) Failed() <-chan struct{} { return t.failed }

// ID returns the transactional id.
func (t *Transactional) ID() string { return t.id }

// Emit sends value under key to topic in the open transaction.
func (t *Transactional) Emit(topic, key string, value []byte) *goka.Promise {
	return t.EmitWithHeaders(topic, key, value, nil)
}

// EmitWithHeaders sends value under key to topic with headers in the open transaction. The
// promise is resolved once the record is written (not yet committed) with its partition and
// offset, or once it failed.
func (t *Transactional) EmitWithHeaders(topic, key string, value []byte, headers goka.Headers) *goka.Promise {
	promise, finish := goka.NewPromiseWithFinisher()
	m := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key)}
	if value != nil {
		m.Value = sarama.ByteEncoder(value)
	}
	var pin []byte
	for k, v := range headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(k), Value: v})
		if k == partition.HeaderPartition {
			pin = v
		}
	}
	t.send(m, []byte(key), pin, func(m *sarama.ProducerMessage, err error) { finish(m, err) })
	return promise
}

// Produce sends r in the open transaction, partitioned by its pin header or its key, and calls
// done once it is written or failed.
func (t *Transactional) Produce(r *kgo.Record, done func(error)) {
	m := &sarama.ProducerMessage{Topic: r.Topic}
	if r.Key != nil {
		m.Key = sarama.ByteEncoder(r.Key)
	}
	if r.Value != nil {
		m.Value = sarama.ByteEncoder(r.Value)
	}
	var pin []byte
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		if h.Key == partition.HeaderPartition {
			pin = h.Value
		}
	}
	t.send(m, r.Key, pin, func(_ *sarama.ProducerMessage, err error) { done(err) })
}

func (t *Transactional) send(m *sarama.ProducerMessage, key, pin []byte, then delivered) {
	p, err := t.partition(m.Topic, key, pin)
	if err != nil {
		then(nil, err)
		return
	}
	m.Partition, m.Metadata = p, then
	t.p.Input() <- m
}

// partition places a record as the franz-go producer does: a pin header wins, else the key's
// partition by the configured scheme.
func (t *Transactional) partition(topic string, key, pin []byte) (int32, error) {
	n, err := t.partitions(topic)
	if err != nil {
		return 0, err
	}
	if pin != nil {
		v, err := strconv.Atoi(string(pin))
		if err != nil || v < 0 || int32(v) >= n {
			return 0, fmt.Errorf("produce to %s: pinned partition %q is not one of its %d", topic, pin, n)
		}
		return int32(v), nil
	}
	return t.scheme.Partition(key, n), nil
}

func (t *Transactional) partitions(topic string) (int32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.counts[topic]; ok {
		return n, nil
	}
	ps, err := t.client.Partitions(topic)
	if err != nil {
		return 0, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	t.counts[topic] = int32(len(ps))
	return int32(len(ps)), nil
}

// Begin opens a transaction.
func (t *Transactional) Begin() error {
	if err := t.p.BeginTxn(); err != nil {
		return t.wrap("begin transaction", err)
	}
	return nil
}

// Commit adds offsets (the next offset to read per topic and partition) to the open
// transaction, fenced by the consumer group session in meta, and commits it. It first waits
// for every record sent in it to be written.
func (t *Transactional) Commit(offsets map[string]map[int32]int64, meta *sarama.ConsumerGroupMetadata) error {
	if len(offsets) > 0 {
		add := make(map[string][]*sarama.PartitionOffsetMetadata, len(offsets))
		mark := topology.TransactionalCommitMetadata
		for topic, ps := range offsets {
			for p, off := range ps {
				add[topic] = append(add[topic], &sarama.PartitionOffsetMetadata{Partition: p, Offset: off, Metadata: &mark})
			}
		}
		if err := t.p.AddOffsetsToTxnWithGroupMetadata(add, meta); err != nil {
			return t.wrap("add offsets to transaction", err)
		}
	}
	if err := t.p.CommitTxn(); err != nil {
		return t.wrap("commit transaction", err)
	}
	return nil
}

// Abort aborts the open transaction: nothing sent in it becomes visible to read_committed
// readers. It fails when the producer is fenced or in a fatal state, after which only Close is
// left.
func (t *Transactional) Abort() error {
	if t.p.TxnStatus()&sarama.ProducerTxnFlagInTransaction == 0 && t.p.TxnStatus()&sarama.ProducerTxnFlagInError == 0 {
		return nil
	}
	if err := t.p.AbortTxn(); err != nil {
		return t.wrap("abort transaction", err)
	}
	return nil
}

func (t *Transactional) wrap(what string, err error) error {
	if errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch) {
		return fmt.Errorf("%s: %w (transactional id %s): %w", what, ErrFenced, t.id, err)
	}
	return fmt.Errorf("%s (transactional id %s): %w", what, t.id, err)
}

// Close aborts an open transaction and closes the producer: a transaction is committed only by
// Commit.
func (t *Transactional) Close() error {
	aerr := t.Abort()
	if errors.Is(aerr, ErrFenced) {
		aerr = nil // a fenced producer has nothing left to abort
	}
	// AsyncClose, not Close: Close drains the errors channel itself, and the records it took
	// would never reach their continuations.
	t.p.AsyncClose()
	t.done.Wait()
	cerr := t.client.Close()
	if errors.Is(cerr, sarama.ErrClosedClient) {
		cerr = nil
	}
	return errors.Join(aerr, cerr)
}

// InitCheck starts and closes a transactional producer, to fail fast on a cluster that cannot
// run transactions.
func InitCheck(ctx context.Context, kc kafkaconf.Config, cfg *sarama.Config) error {
	done := make(chan error, 1)
	go func() {
		t, err := NewTransactional(kc, cfg)
		if err == nil {
			err = t.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("transactional producer %s: no transaction coordinator answered: %w", cfg.Producer.Transaction.ID, ctx.Err())
	}
}
