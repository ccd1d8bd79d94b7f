package producer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/internal/partition"
)

const partitions = 4

// newProducer returns a Producer on an in-process broker with topic "t" of four partitions, and
// the broker's settings.
func newProducer(t *testing.T) (*Producer, kafkaconf.Config) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "t"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	kc := kafkaconf.Defaults()
	kc.Brokers = c.ListenAddrs()
	p, err := New(kc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p, kc
}

// readAt reads the record at offset of topic/partition.
func readAt(t *testing.T, kc kafkaconf.Config, topic string, partition int32, offset int64) *kgo.Record {
	t.Helper()
	cl, err := kc.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs := cl.PollRecords(ctx, 1)
	require.NoError(t, fs.Err0())
	recs := fs.Records()
	require.Len(t, recs, 1)
	return recs[0]
}

// result waits for a promise and returns what it was resolved with.
func result(t *testing.T, p *goka.Promise) (*sarama.ProducerMessage, error) {
	t.Helper()
	type done struct {
		msg *sarama.ProducerMessage
		err error
	}
	ch := make(chan done, 1)
	p.ThenWithMessage(func(msg *sarama.ProducerMessage, err error) { ch <- done{msg, err} })
	select {
	case d := <-ch:
		return d.msg, d.err
	case <-time.After(10 * time.Second):
		t.Fatal("promise not resolved within 10s")
		return nil, nil
	}
}

func TestEmitResolvesWithPartitionAndOffset(t *testing.T) {
	p, kc := newProducer(t)
	pin := func(v string) goka.Headers { return goka.Headers{partition.HeaderPartition: []byte(v)} }
	for _, tc := range []struct {
		name    string
		key     string
		value   []byte
		headers goka.Headers
		want    int32
	}{
		{"a key goes to its murmur2 partition", "user-42", []byte("a"), nil, partition.Murmur2.Partition([]byte("user-42"), partitions)},
		{"a pin wins over the key", "user-42", []byte("b"), pin("3"), 3},
		{"a tombstone is produced as one", "user-7", nil, goka.Headers{"h": []byte("v")}, partition.Murmur2.Partition([]byte("user-7"), partitions)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := result(t, p.EmitWithHeaders("t", tc.key, tc.value, tc.headers))
			require.NoError(t, err)
			require.NotNil(t, msg)
			assert.Equal(t, "t", msg.Topic)
			assert.Equal(t, tc.want, msg.Partition)

			r := readAt(t, kc, "t", msg.Partition, msg.Offset)
			assert.Equal(t, msg.Offset, r.Offset, "the promise carries the offset the record got")
			assert.Equal(t, tc.key, string(r.Key))
			assert.Equal(t, tc.value, r.Value)
			assert.Equal(t, tc.value == nil, r.Value == nil, "a nil value stays a tombstone")
			got := goka.Headers{}
			for _, h := range r.Headers {
				got[h.Key] = h.Value
			}
			if tc.headers == nil {
				assert.Empty(t, got)
			} else {
				assert.Equal(t, tc.headers, got)
			}
		})
	}
}

func TestEmitFailures(t *testing.T) {
	p, _ := newProducer(t)
	for _, tc := range []struct {
		name  string
		topic string
		value []byte
		pin   string
		want  string
	}{
		{"a pin beyond the topic's partitions", "t", []byte("x"), "4", "invalid record partitioning"},
		{"a record over the batch limit", "t", make([]byte, 2<<20), "", "MESSAGE_TOO_LARGE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h goka.Headers
			if tc.pin != "" {
				h = goka.Headers{partition.HeaderPartition: []byte(tc.pin)}
			}
			msg, err := result(t, p.EmitWithHeaders(tc.topic, "k", tc.value, h))
			require.Error(t, err)
			assert.Nil(t, msg)
			assert.Contains(t, err.Error(), "produce to "+tc.topic)
			assert.Contains(t, strings.ToUpper(err.Error()), strings.ToUpper(tc.want))
		})
	}
}

func TestEmitAfterCloseFails(t *testing.T) {
	p, _ := newProducer(t)
	_, err := result(t, p.Emit("t", "k", []byte("before")))
	require.NoError(t, err)
	require.NoError(t, p.Close())
	_, err = result(t, p.Emit("t", "k", []byte("after")))
	assert.ErrorIs(t, err, ErrClosed)
}

// Every record waits for all in-sync replicas and is idempotent: what kafkaconf's hardening
// promises for goka's writes.
func TestProducerIsHardened(t *testing.T) {
	p, _ := newProducer(t)
	assert.Equal(t, kgo.AllISRAcks(), p.cl.OptValue(kgo.RequiredAcks))
	assert.Equal(t, false, p.cl.OptValue(kgo.DisableIdempotentWrite))
}

func TestProduceCallsDoneOnce(t *testing.T) {
	p, kc := newProducer(t)
	for _, tc := range []struct {
		name string
		rec  *kgo.Record
		err  string
	}{
		{"acknowledged", &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("v")}, ""},
		{"failed", &kgo.Record{Topic: "t", Value: make([]byte, 2<<20)}, "produce to t: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := make(chan error, 2)
			p.Produce(tc.rec, func(err error) { errs <- err })
			select {
			case err := <-errs:
				if tc.err == "" {
					require.NoError(t, err)
					assert.Equal(t, "v", string(readAt(t, kc, "t", tc.rec.Partition, tc.rec.Offset).Value))
				} else {
					assert.ErrorContains(t, err, tc.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("done not called within 10s")
			}
			// Flush returns once every buffered record's promise has run (franz-go calls a
			// promise before it counts the record unbuffered): a second call would be here now.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.NoError(t, p.cl.Flush(ctx))
			assert.Empty(t, errs, "done is called once")
		})
	}
}

func TestClientID(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer c.Close()
	kc := kafkaconf.Defaults()
	kc.Brokers = c.ListenAddrs()
	kc.ClientID = "enricher-replica-2"
	p, err := New(kc)
	require.NoError(t, err)
	defer p.Close()
	assert.Equal(t, "enricher-replica-2", p.cl.OptValue(kgo.ClientID))
}
