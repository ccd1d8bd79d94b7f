package partition

import (
	"hash"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// HeaderPartition names a record header that pins the record to a partition. enricher sets it
// on its changelog writes: a table record must stay in the partition of the input that caused
// it, whatever partitioner the input's producer used.
const HeaderPartition = "enricher-partition"

// KgoPartitioner returns a franz-go partitioner for the scheme, for producers that partition by
// key. A record with a HeaderPartition header goes to that partition (a value out of range fails
// the record); a record without a key goes round robin.
func (s Scheme) KgoPartitioner() kgo.Partitioner { return kgoPartitioner{scheme: s} }

type kgoPartitioner struct{ scheme Scheme }

func (p kgoPartitioner) ForTopic(string) kgo.TopicPartitioner {
	return &kgoTopicPartitioner{scheme: p.scheme}
}

// kgoTopicPartitioner partitions the records of one topic; franz-go calls it for one record at
// a time, so next needs no lock.
type kgoTopicPartitioner struct {
	scheme Scheme
	next   int
}

// RequiresConsistency is true: a key's partition never moves while another is unavailable.
func (p *kgoTopicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

// Partition returns the record's partition among n, or -1 (franz-go then fails the record) for a
// pin that is not a partition number below n.
func (p *kgoTopicPartitioner) Partition(r *kgo.Record, n int) int {
	for _, h := range r.Headers {
		if h.Key == HeaderPartition {
			v, err := strconv.Atoi(string(h.Value))
			if err != nil || v < 0 || v >= n {
				return -1
			}
			return v
		}
	}
	if r.Key == nil {
		p.next = (p.next + 1) % n
		return p.next
	}
	return int(p.scheme.Partition(r.Key, int32(n)))
}

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
