package partition

import (
	"hash"
	"strconv"
	"sync/atomic"

	"github.com/IBM/sarama"
)

// HeaderPartition names a record header that pins the record to a partition. enricher sets it
// on its changelog writes: a table record must stay in the partition of the input that caused
// it, whatever partitioner the input's producer used.
const HeaderPartition = "enricher-partition"

// SaramaPartitioner returns a sarama partitioner constructor for the scheme. A message with a
// HeaderPartition header goes to that partition; a message without a key goes round robin.
func (s Scheme) SaramaPartitioner() sarama.PartitionerConstructor {
	return func(topic string) sarama.Partitioner { return &saramaPartitioner{scheme: s} }
}

type saramaPartitioner struct {
	scheme Scheme
	next   atomic.Int32
}

func (p *saramaPartitioner) Partition(msg *sarama.ProducerMessage, n int32) (int32, error) {
	for _, h := range msg.Headers {
		if string(h.Key) == HeaderPartition {
			v, err := strconv.ParseInt(string(h.Value), 10, 32)
			if err != nil || v < 0 || int32(v) >= n {
				return -1, sarama.ErrInvalidPartition
			}
			return int32(v), nil
		}
	}
	if msg.Key == nil {
		return (p.next.Add(1) & 0x7fffffff) % n, nil
	}
	key, err := msg.Key.Encode()
	if err != nil {
		return -1, err
	}
	return p.scheme.Partition(key, n), nil
}

func (p *saramaPartitioner) RequiresConsistency() bool { return true }

// GokaHasher returns a hasher for goka's WithHasher/WithViewHasher options that makes goka's
// lookups agree with the scheme on a table of n partitions. goka computes |int32(Sum32())| % n,
// so the hasher's sum is the scheme's partition itself.
func (s Scheme) GokaHasher(n int32) func() hash.Hash32 {
	return func() hash.Hash32 { return &partitionHash{scheme: s, n: n} }
}

type partitionHash struct {
	scheme Scheme
	n      int32
	key    []byte
}

func (h *partitionHash) Write(p []byte) (int, error) { h.key = append(h.key, p...); return len(p), nil }
func (h *partitionHash) Sum(b []byte) []byte {
	v := h.Sum32()
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
func (h *partitionHash) Reset()         { h.key = h.key[:0] }
func (h *partitionHash) Size() int      { return 4 }
func (h *partitionHash) BlockSize() int { return 1 }
func (h *partitionHash) Sum32() uint32  { return uint32(h.scheme.Partition(h.key, h.n)) }
