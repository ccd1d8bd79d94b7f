package consumergroup

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// offsetManager keeps the highest position marked per topic and partition, as sarama's does:
// what it holds is what the next commit writes.
type offsetManager struct {
	mu    sync.Mutex
	pos   map[topicPartition]int64
	marks int
}

func newOffsetManager() *offsetManager { return &offsetManager{pos: map[topicPartition]int64{}} }

func (o *offsetManager) mark(topic string, partition int32, next int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.marks++
	if tp := (topicPartition{topic, partition}); next > o.pos[tp] {
		o.pos[tp] = next
	}
}

// committed returns the position a commit would write, or start when nothing was marked.
func (o *offsetManager) committed(topic string, start int64) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p, ok := o.pos[topicPartition{topic, 3}]; ok {
		return p
	}
	return start
}

func quietWatermark(claims map[string][]int32, sink func(string, int32, int64), stats *Stats) *watermark {
	return newWatermark(claims, sink, stats, slog.New(slog.DiscardHandler))
}

// The bug, then the fix: goka marks record 11 (offset 12) before record 10 (offset 11), because
// record 11's output was acknowledged first. Straight to sarama's offset manager, the commit
// passes record 10 while its write is pending; through the watermark it stays at 10.
func TestWatermarkHoldsCommitBehindPendingRecord(t *testing.T) {
	straight := newOffsetManager()
	for _, next := range []int64{12, 13} { // records 11 and 12 done, record 10 pending
		straight.mark("input", 3, next)
	}
	assert.Equal(t, int64(13), straight.committed("input", 10), "without the watermark the commit passes record 10 (the bug)")

	om := newOffsetManager()
	wm := quietWatermark(map[string][]int32{"input": {3}}, om.mark, nil)
	for _, off := range []int64{10, 11, 12} {
		wm.track("input", 3).deliver(off)
	}
	wm.mark("input", 3, 12)
	wm.mark("input", 3, 13)
	assert.Equal(t, int64(10), om.committed("input", 10), "record 10 pending: the commit stays at 10")
	wm.mark("input", 3, 11)
	assert.Equal(t, int64(13), om.committed("input", 10), "all done: the commit moves past all three")
}

func TestWatermark(t *testing.T) {
	type step struct {
		topic string
		next  int64 // goka's mark: the record at next-1 is done
		// want is the committed position of every topic after the step (its start if none).
		want map[string]int64
	}
	in := func(next int64, wantIn, wantSc int64) step {
		return step{"input", next, map[string]int64{"input": wantIn, "scores": wantSc}}
	}
	sc := func(next int64, wantIn, wantSc int64) step {
		return step{"scores", next, map[string]int64{"input": wantIn, "scores": wantSc}}
	}
	for _, tc := range []struct {
		name      string
		delivered map[string][]int64 // in delivery order; a topic's start is its first offset
		steps     []step
		ignored   int64
	}{
		{"in order", map[string][]int64{"input": {10, 11, 12}},
			[]step{in(11, 11, 0), in(12, 12, 0), in(13, 13, 0)}, 0},
		{"out of order: stays at the pending record, then jumps", map[string][]int64{"input": {10, 11, 12}},
			[]step{in(12, 10, 0), in(11, 12, 0), in(13, 13, 0)}, 0},
		{"reversed", map[string][]int64{"input": {10, 11, 12}},
			[]step{in(13, 10, 0), in(12, 10, 0), in(11, 13, 0)}, 0},
		{"compaction gaps, in order", map[string][]int64{"input": {10, 15, 20}},
			[]step{in(11, 15, 0), in(16, 20, 0), in(21, 21, 0)}, 0},
		{"compaction gaps, out of order: the position is the pending record", map[string][]int64{"input": {10, 15, 20}},
			[]step{in(16, 10, 0), in(11, 20, 0), in(21, 21, 0)}, 0},
		{"two topics of one partition are independent", map[string][]int64{"input": {10, 11}, "scores": {5, 6}},
			[]step{in(12, 10, 5), sc(6, 10, 6), sc(7, 10, 7), in(11, 12, 7)}, 0},
		{"a repeat mark changes nothing", map[string][]int64{"input": {10, 11}},
			[]step{in(11, 11, 0), in(11, 11, 0), in(12, 12, 0), in(12, 12, 0)}, 0},
		{"marks for records never received are ignored", map[string][]int64{"input": {10, 15}},
			[]step{
				in(31, 10, 0), // beyond the last record: would commit records goka never had
				in(13, 10, 0), // inside a gap, above the position: no such record was received
				in(16, 10, 0),
				in(11, 16, 0),
				in(9, 16, 0), // below the position: a record already passed, or none
				sc(1, 16, 0), // a topic-partition this session does not claim
			}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			om := newOffsetManager()
			stats := NewStats()
			wm := quietWatermark(map[string][]int32{"input": {3}, "scores": {3}}, om.mark, stats)
			if _, ok := tc.delivered["scores"]; !ok {
				delete(wm.tracks, topicPartition{"scores", 3})
			}
			start := map[string]int64{}
			for topic, offs := range tc.delivered {
				start[topic] = offs[0]
				for _, off := range offs {
					wm.track(topic, 3).deliver(off)
				}
			}
			for i, s := range tc.steps {
				wm.mark(s.topic, 3, s.next)
				for topic, want := range s.want {
					if _, ok := tc.delivered[topic]; ok {
						assert.Equal(t, want, om.committed(topic, start[topic]), "step %d (mark %s %d): %s", i, s.topic, s.next, topic)
					}
				}
			}
			assert.Equal(t, tc.ignored, stats.MarksIgnored.Load(), "marks ignored")
		})
	}
}

// A record delivered twice (at or below the last one) is noted once: its first note stands.
func TestWatermarkRedelivery(t *testing.T) {
	om := newOffsetManager()
	wm := quietWatermark(map[string][]int32{"input": {3}}, om.mark, nil)
	tr := wm.track("input", 3)
	for _, off := range []int64{10, 11, 11, 10, 12} {
		tr.deliver(off)
	}
	assert.Equal(t, 3, tr.n)
	wm.mark("input", 3, 11)
	wm.mark("input", 3, 12)
	wm.mark("input", 3, 13)
	assert.Equal(t, int64(13), om.committed("input", 10))
}

// Against a model, over many random delivery gaps and mark orders, with the ring growing well
// past its first size: after every mark the position passes exactly the records of the done
// prefix (the lowest record not done, or the one after the last record).
func TestWatermarkAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		n := 1 + rng.IntN(600)
		offs := make([]int64, n)
		off := int64(rng.IntN(100))
		for i := range offs {
			offs[i] = off
			off += 1 + int64(rng.IntN(3)) // gaps of up to two records
		}
		om := newOffsetManager()
		wm := quietWatermark(map[string][]int32{"input": {3}}, om.mark, nil)
		tr := wm.track("input", 3)
		// Deliveries and marks interleave: a record is marked only once delivered, in a random
		// order among those delivered.
		done := make([]bool, n)
		var open []int
		delivered := 0
		for marked := 0; marked < n; {
			if delivered < n && (len(open) == 0 || rng.IntN(2) == 0) {
				tr.deliver(offs[delivered])
				open = append(open, delivered)
				delivered++
				continue
			}
			k := rng.IntN(len(open))
			i := open[k]
			open = append(open[:k], open[k+1:]...)
			wm.mark("input", 3, offs[i]+1)
			done[i] = true
			marked++
			// The done prefix ends after record lo-1; the lowest record not done is at hi (or
			// none is, and hi = lo). Any position in [lo, hi] names the same records: across a
			// compaction gap the watermark may stop at the gap's start.
			lo, hi := offs[0], offs[0]
			for j := 0; j < delivered; j++ {
				if !done[j] {
					hi = offs[j]
					break
				}
				lo, hi = offs[j]+1, offs[j]+1
			}
			got := om.committed("input", offs[0])
			require.True(t, lo <= got && got <= hi, "round %d, after marking offset %d: position %d, want within [%d, %d]", round, offs[i], got, lo, hi)
		}
	}
}

// Deliveries on one goroutine while several mark in scrambled order, as goka's producer
// callbacks do: no position passed on ever passes a record not yet marked, and the last is
// the one after the last record. Run under -race.
func TestWatermarkConcurrent(t *testing.T) {
	const records, markers = 20000, 4
	offs := make([]int64, records)
	rng := rand.New(rand.NewPCG(3, 4))
	off := int64(0)
	for i := range offs {
		offs[i] = off
		off += 1 + int64(rng.IntN(2))
	}
	var mu sync.Mutex
	marked := make([]bool, records) // set before the record's mark is made
	verified := 0                   // every record below it was marked
	var bad []string
	var final int64
	index := map[int64]int{}
	for i, o := range offs {
		index[o] = i
	}
	sink := func(_ string, _ int32, next int64) {
		mu.Lock()
		defer mu.Unlock()
		for verified < records && offs[verified] < next {
			if !marked[verified] {
				bad = append(bad, fmt.Sprintf("position %d passed record %d, not yet marked", next, offs[verified]))
			}
			verified++
		}
		final = max(final, next)
	}
	wm := quietWatermark(map[string][]int32{"input": {3}}, sink, nil)
	tr := wm.track("input", 3)

	work := make(chan int64, 64)
	var wg sync.WaitGroup
	for w := range markers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			var held []int64
			flush := func(k int) {
				o := held[k]
				held = append(held[:k], held[k+1:]...)
				mu.Lock()
				marked[index[o]] = true
				mu.Unlock()
				wm.mark("input", 3, o+1)
			}
			for o := range work {
				held = append(held, o)
				if len(held) > 8 {
					flush(r.IntN(len(held)))
				}
			}
			for len(held) > 0 {
				flush(r.IntN(len(held)))
			}
		}()
	}
	for _, o := range offs {
		tr.deliver(o)
		work <- o
	}
	close(work)
	wg.Wait()
	assert.Empty(t, bad)
	assert.Equal(t, offs[records-1]+1, final)
}

// recordingSession is a sarama session of partition 3 of input and scores that records goka's
// marks as sarama's offset manager would keep them.
type recordingSession struct {
	fakeSession
	om *offsetManager
}

func (s *recordingSession) MarkOffset(topic string, partition int32, offset int64, _ string) {
	s.om.mark(topic, partition, offset)
}

// fakeGoka stands in for goka's handler: it keeps the session Setup gave it (goka marks
// through that one) and hands on the records ConsumeClaim receives.
type fakeGoka struct {
	mu   sync.Mutex
	sess sarama.ConsumerGroupSession
	got  chan *sarama.ConsumerMessage
}

func (g *fakeGoka) Setup(s sarama.ConsumerGroupSession) error {
	g.mu.Lock()
	g.sess = s
	g.mu.Unlock()
	return nil
}
func (g *fakeGoka) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (g *fakeGoka) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			g.got <- m
		case <-s.Context().Done():
			return nil
		}
	}
}

func (g *fakeGoka) session() sarama.ConsumerGroupSession {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sess
}

// Through the session handler, at-least-once, on both ways a record takes to goka (merged with
// the other topic, and handed on alone without alignment): goka sees a wrapped session, every
// record is noted before goka sees it, and sarama gets only the watermark's positions. A new
// session starts fresh.
func TestSessionHandlerMarksThroughWatermark(t *testing.T) {
	for _, maxIdle := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("max-idle %s", maxIdle), func(t *testing.T) {
			g := &fakeGoka{got: make(chan *sarama.ConsumerMessage, 16)}
			cfg := &Config{MaxIdle: maxIdle, First: "scores", LagWait: time.Second, Logger: slog.New(slog.DiscardHandler), Stats: NewStats()}
			h := &sessionHandler{goka: g, cfg: cfg, group: "g", end: func(error) {}}

			run := func(sess *recordingSession, offsets []int64) (marks sarama.ConsumerGroupSession, end func()) {
				require.NoError(t, h.Setup(sess))
				in, sc := newFakeClaim("input"), newFakeClaim("scores")
				var wg sync.WaitGroup
				for _, c := range []*fakeClaim{in, sc} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						assert.NoError(t, h.ConsumeClaim(sess, c))
					}()
				}
				for _, off := range offsets {
					in.next = off
					in.send(int(off))
				}
				for range offsets {
					select {
					case <-g.got:
					case <-time.After(5 * time.Second):
						t.Fatal("goka was not handed the records")
					}
				}
				return g.session(), func() {
					close(in.msgs)
					close(sc.msgs)
					wg.Wait()
					require.NoError(t, h.Cleanup(sess))
				}
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first := &recordingSession{fakeSession: fakeSession{ctx: ctx}, om: newOffsetManager()}
			gs, end := run(first, []int64{10, 11, 12})
			require.NotSame(t, first, gs, "goka marks through a wrapped session")
			gs.MarkOffset("input", 3, 12, "")
			gs.MarkMessage(&sarama.ConsumerMessage{Topic: "input", Partition: 3, Offset: 12}, "")
			assert.Equal(t, int64(10), first.om.committed("input", 10), "record 10 is pending")
			gs.MarkOffset("input", 3, 11, "")
			assert.Equal(t, int64(13), first.om.committed("input", 10))
			end()

			second := &recordingSession{fakeSession: fakeSession{ctx: ctx}, om: newOffsetManager()}
			gs2, end2 := run(second, []int64{13, 14})
			gs2.MarkOffset("input", 3, 13, "") // record 12 was the first session's
			gs2.MarkOffset("input", 3, 15, "")
			assert.Zero(t, second.om.marks, "the new session knows only its own records")
			gs2.MarkOffset("input", 3, 14, "")
			assert.Equal(t, int64(15), second.om.committed("input", 13))
			end2()
			assert.Zero(t, cfg.Stats.MarksIgnored.Load(), "a mark below the session's first record is a repeat, not an unknown record")
		})
	}
}

// BenchmarkWatermark is the mark path's cost per record: a record noted as received, then its
// mark through the session goka sees, to a sink that keeps the highest position as sarama's
// offset manager does. "swapped" marks each pair of records in reverse order.
func BenchmarkWatermark(b *testing.B) {
	for _, swapped := range []bool{false, true} {
		name := "in-order"
		if swapped {
			name = "swapped"
		}
		b.Run(name, func(b *testing.B) {
			var pos int64
			wm := quietWatermark(map[string][]int32{"input": {3}, "scores": {3}}, func(_ string, _ int32, next int64) {
				if next > pos {
					pos = next
				}
			}, nil)
			s := &markSession{wm: wm}
			tr := wm.track("input", 3)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 2 {
				tr.deliver(int64(i))
				tr.deliver(int64(i + 1))
				if swapped {
					s.MarkOffset("input", 3, int64(i+2), "")
					s.MarkOffset("input", 3, int64(i+1), "")
				} else {
					s.MarkOffset("input", 3, int64(i+1), "")
					s.MarkOffset("input", 3, int64(i+2), "")
				}
			}
		})
	}
}
