package consumergroup

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
)

// watermark turns goka's offset marks, one per record, into a commit position per topic and
// partition that never passes a record whose writes are not acknowledged.
//
// goka marks a record (MarkOffset with its offset+1) as soon as that record's own writes are
// acknowledged, and writes to different output partitions are acknowledged in any order: record
// N+1's output can land while record N's waits for a partition whose leader moves. sarama keeps
// the highest mark and commits it, so a crash before N's write lands would lose N's output for
// good. The watermark remembers the offsets of each topic-partition's records in the order they
// were received (increasing, with gaps where compaction removed records), notes which are done,
// and lets a position through to its sink only when it moves: the offset of the lowest record
// not done, or the one after the last record when every record is done. An offset is
// committed only when every earlier record of its partition is done.
//
// A mark for an offset that was never received is ignored and counted (Stats.MarksIgnored):
// passing it on could commit records goka was never handed, or pass records still pending; the
// record it names, if it exists, is read again after a restart, which at-least-once allows. A
// mark for a record already passed is a repeat and changes nothing. Each session has a
// watermark of its own, made at Setup from the session's claims: a new session starts fresh,
// at the offsets sarama committed.
type watermark struct {
	// tracks is fixed at Setup and only read afterwards: lookups take no lock.
	tracks map[topicPartition]*track
	// sink receives a topic-partition's new position. Positions of one topic-partition can
	// reach it out of order when marks race; sarama's offset manager and the transaction
	// keep the highest, so a late smaller one changes nothing.
	sink   func(topic string, partition int32, next int64)
	stats  *Stats
	log    *slog.Logger
	warned atomic.Bool
}

// newWatermark returns the watermark of a session that claims claims (topic to partitions).
func newWatermark(claims map[string][]int32, sink func(topic string, partition int32, next int64), stats *Stats, log *slog.Logger) *watermark {
	w := &watermark{tracks: make(map[topicPartition]*track), sink: sink, stats: stats, log: log}
	for topic, ps := range claims {
		for _, p := range ps {
			w.tracks[topicPartition{topic, p}] = newTrack()
		}
	}
	return w
}

// track returns topic/partition's track, or nil if the session does not claim it.
func (w *watermark) track(topic string, partition int32) *track {
	return w.tracks[topicPartition{topic, partition}]
}

// mark notes goka's mark of next: the record at next-1 is done.
func (w *watermark) mark(topic string, partition int32, next int64) {
	t := w.tracks[topicPartition{topic, partition}]
	if t == nil {
		w.ignored(topic, partition, next)
		return
	}
	pos, moved, unknown := t.done(next - 1)
	if unknown {
		w.ignored(topic, partition, next)
	}
	if moved {
		w.sink(topic, partition, pos)
	}
}

func (w *watermark) ignored(topic string, partition int32, next int64) {
	if w.stats != nil {
		w.stats.MarksIgnored.Add(1)
	}
	if w.warned.CompareAndSwap(false, true) {
		w.log.Warn("an offset mark names a record this session never handed on: ignored (logged once per session)",
			"topic", topic, "partition", partition, "offset", next)
	}
}

// pending is a received record: its offset, and whether goka marked it.
type pending struct {
	offset int64
	done   bool
}

// track is one topic-partition's records between the position passed on and the last record
// received, in a ring that grows by doubling and is reused: no allocation per record once it
// holds as many records as are ever in flight at once. While a record's write is held (a
// partition without a leader), the ring holds every record received after it, 16 bytes each,
// until the producer's buffer fills and goka stops taking records.
type track struct {
	mu   sync.Mutex
	ring []pending // len is a power of two
	head int       // ring index of the lowest record not passed
	n    int       // records in the ring
	last int64     // offset of the last record received; -1 before the first
}

// initialRing is a new track's ring size: more than goka usually has in flight per partition.
const initialRing = 64

func newTrack() *track { return &track{ring: make([]pending, initialRing), last: -1} }

// deliver notes that the record at offset was received. Offsets of a topic-partition arrive
// increasing within a session; one at or below the last is a redelivery of a record already
// noted, and the first note stands.
func (t *track) deliver(offset int64) {
	t.mu.Lock()
	if offset > t.last {
		if t.n == len(t.ring) {
			t.grow()
		}
		t.ring[(t.head+t.n)&(len(t.ring)-1)] = pending{offset: offset}
		t.n++
		t.last = offset
	}
	t.mu.Unlock()
}

func (t *track) grow() {
	ring := make([]pending, 2*len(t.ring))
	for i := 0; i < t.n; i++ {
		ring[i] = t.ring[(t.head+i)&(len(t.ring)-1)]
	}
	t.ring, t.head = ring, 0
}

// done notes that the record at offset is done. It returns the new position when the position
// moved, and unknown when no record at offset was received (the mark is then ignored).
func (t *track) done(offset int64) (pos int64, moved, unknown bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, found := t.find(offset)
	if !found {
		// At or below the position a record was passed already (a repeat mark) or none exists
		// (a compaction gap): nothing to do. Above it, no record was received at offset.
		return 0, false, offset > t.last || t.n > 0 && offset > t.ring[t.head].offset
	}
	mask := len(t.ring) - 1
	t.ring[(t.head+i)&mask].done = true
	if i != 0 {
		return 0, false, false // an earlier record is pending: the position stays
	}
	// The lowest pending record is done: the position moves past every done record after it.
	for t.n > 0 && t.ring[t.head].done {
		pos = t.ring[t.head].offset + 1
		t.head = (t.head + 1) & mask
		t.n--
	}
	if t.n > 0 {
		pos = t.ring[t.head].offset // the lowest record not done, across a compaction gap
	}
	return pos, true, false
}

// find returns the ring position (from head) of the record at offset. Marks mostly come in
// order, so the head is tried first; otherwise a binary search, the offsets being increasing.
func (t *track) find(offset int64) (int, bool) {
	if t.n == 0 {
		return 0, false
	}
	mask := len(t.ring) - 1
	if t.ring[t.head].offset == offset {
		return 0, true
	}
	lo, hi := 1, t.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.ring[(t.head+mid)&mask].offset < offset {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < t.n && t.ring[(t.head+lo)&mask].offset == offset {
		return lo, true
	}
	return 0, false
}

// markSession is the session goka sees: its marks go through the session's watermark to the
// watermark's sink, sarama's offset manager under at-least-once (txnSession embeds it for
// exactly-once, where the sink is the transaction), so no commit passes a record goka has not
// finished.
type markSession struct {
	sarama.ConsumerGroupSession
	wm *watermark
}

// MarkOffset notes the record at offset-1 done; goka's metadata (always empty) is dropped.
func (s *markSession) MarkOffset(topic string, partition int32, offset int64, _ string) {
	s.wm.mark(topic, partition, offset)
}

// MarkMessage notes msg done.
func (s *markSession) MarkMessage(msg *sarama.ConsumerMessage, _ string) {
	s.wm.mark(msg.Topic, msg.Partition, msg.Offset+1)
}
