package producer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/kafkaconf"
)

// DefaultFlushTimeout bounds how long Close waits for buffered records to be acknowledged.
const DefaultFlushTimeout = 30 * time.Second

// BatchMaxBytes is the largest record batch the producer sends (franz-go's default, set here so
// the job knows it): with the topic's max.message.bytes, the bound on one record.
const BatchMaxBytes = 1_000_012

// ErrClosed fails the records emitted after Close, and those still unacknowledged when Close
// gave up waiting for them.
var ErrClosed = errors.New("producer closed")

// Producer implements goka.Producer with a franz-go client.
type Producer struct {
	cl           *kgo.Client
	flushTimeout time.Duration
	// onError, if set, is called when a record fails (Transactional: its transaction is lost).
	onError func()
	// permanent holds the first failure that no retry can mend (see Permanent).
	permanent atomic.Pointer[error]
	// sent counts the records handed to the client, so a transaction knows whether it wrote any.
	sent atomic.Int64
}

// permanentErrors are the broker's answers to a write that will be answered the same way every
// time it is sent again: too large for the topic, refused by its ACLs or policy, or malformed.
// Restarting the processor on them only loops on the same record.
func permanentErrors() []error {
	return []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage,
		kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed,
		kerr.PolicyViolation, kerr.InvalidRequiredAcks}
}

// Permanent returns the first write failure that no retry can mend, or nil. The job stops with it
// (exit 1) rather than restart onto the same record forever.
func (p *Producer) Permanent() error {
	if e := p.permanent.Load(); e != nil {
		return *e
	}
	return nil
}

var _ goka.Producer = (*Producer)(nil)

// New returns a Producer for kc's brokers and security settings, partitioning records with kc's
// scheme. opts come after enricher's own.
func New(kc kafkaconf.Config, opts ...kgo.Opt) (*Producer, error) {
	base := []kgo.Opt{
		kgo.RecordPartitioner(kc.Partitioner.KgoPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(BatchMaxBytes),
		// kafkaconf's clients request acks from every in-sync replica; franz-go's producer is
		// idempotent unless told otherwise, so retries neither duplicate nor reorder a record.
	}
	cl, err := kc.Client(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &Producer{cl: cl, flushTimeout: DefaultFlushTimeout}, nil
}

// Emit sends value under key to topic.
func (p *Producer) Emit(topic, key string, value []byte) *goka.Promise {
	return p.EmitWithHeaders(topic, key, value, nil)
}

// EmitWithHeaders sends value under key to topic with headers. The promise is resolved once the
// record is acknowledged by every in-sync replica, with a message that carries the record's
// partition and offset (goka keeps a table write's offset as its store's changelog offset), or
// once it failed for good.
func (p *Producer) EmitWithHeaders(topic, key string, value []byte, headers goka.Headers) *goka.Promise {
	promise, finish := goka.NewPromiseWithFinisher()
	r := &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
	if len(headers) > 0 {
		r.Headers = make([]kgo.RecordHeader, 0, len(headers))
		for k, v := range headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: v})
		}
	}
	p.sent.Add(1)
	p.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		if err != nil {
			finish(nil, p.produceError(r, err))
			return
		}
		finish(&sarama.ProducerMessage{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp}, nil)
	})
	return promise
}

// Produce sends r, partitioned by its pin header or its key, and calls done once: with nil when
// r is acknowledged, or with the error that failed it.
func (p *Producer) Produce(r *kgo.Record, done func(error)) {
	p.sent.Add(1)
	p.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		if err != nil {
			err = p.produceError(r, err)
		}
		done(err)
	})
}

func (p *Producer) produceError(r *kgo.Record, err error) error {
	if p.onError != nil {
		p.onError()
	}
	if errors.Is(err, kgo.ErrClientClosed) {
		err = ErrClosed
	}
	err = fmt.Errorf("produce to %s: %w", r.Topic, err)
	for _, perm := range permanentErrors() {
		if errors.Is(err, perm) {
			p.permanent.CompareAndSwap(nil, &err)
			break
		}
	}
	return err
}

// Close waits up to the flush timeout for the buffered records to be acknowledged, then closes
// the client; records still unacknowledged then fail with ErrClosed.
func (p *Producer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.flushTimeout)
	defer cancel()
	err := p.cl.Flush(ctx)
	p.cl.Close()
	if err != nil {
		return fmt.Errorf("flush producer: %w", err)
	}
	return nil
}
