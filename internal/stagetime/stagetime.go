package stagetime

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stage is one part of an output's time.
type Stage int

// The stages, in the order an input passes them.
const (
	// Fetch runs from the input's record timestamp until enricher's consumer received it: the
	// producer's send, the broker's append and the fetch.
	Fetch Stage = iota
	// Hold is the time enricher held the input before goka: timestamp alignment in the merge,
	// or an exactly-once commit under way.
	Hold
	// Queue is the time in goka's channels until the callback ran.
	Queue
	// Callback is the callback's time until the output was sent: score lookup and encoding.
	Callback
	// Produce runs from the output's send until the broker acknowledged it.
	Produce
	numStages
)

// Stages returns every stage in order.
func Stages() []Stage { return []Stage{Fetch, Hold, Queue, Callback, Produce} }

// String names the stage as the metrics label it.
func (s Stage) String() string {
	switch s {
	case Fetch:
		return "fetch"
	case Hold:
		return "hold"
	case Queue:
		return "queue"
	case Callback:
		return "callback"
	case Produce:
		return "produce"
	}
	return "unknown"
}

// DefaultEvery is the sampling New uses for every <= 0: one input in 16, by offset. At the
// benchmark's peak that is some 20,000 breakdowns a second, plenty for a p99, at a cost
// of four clock reads per sampled input.
const DefaultEvery = 16

// numBounds is how many bands have an upper bound; numBands adds the last, which has none.
const (
	numBounds = 8
	numBands  = numBounds + 1
)

// bandBounds returns the upper bounds of the bands outputs are summed in, by their total time.
func bandBounds() [numBounds]time.Duration {
	return [numBounds]time.Duration{
		5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	}
}

// ringSize is how many sampled inputs of a partition may be between their receipt and their
// callback before the oldest is forgotten: with one in 16 sampled, 4,096 records, more than the
// merge (1,024 a topic), sarama and goka buffer together.
const ringSize = 256

// slot holds the times a sampled input was received and handed on, as Unix nanoseconds.
type slot struct {
	offset   atomic.Int64
	received atomic.Int64
	handed   atomic.Int64
}

type ring [ringSize]slot

// Tracker records breakdowns of the outputs of one input topic. A nil *Tracker records nothing.
// It is safe for concurrent use.
type Tracker struct {
	topic string
	every int64

	mu    sync.Mutex
	rings atomic.Pointer[[]*ring] // by partition; grown under mu

	bands [numBands]band
	// Missed counts sampled inputs whose receipt was no longer known at their callback.
	missed atomic.Int64
}

type band struct {
	count atomic.Int64
	nanos [numStages]atomic.Int64
}

// New returns a Tracker of topic's inputs that samples one offset in every (DefaultEvery for
// every <= 0).
func New(topic string, every int) *Tracker {
	if every <= 0 {
		every = DefaultEvery
	}
	t := &Tracker{topic: topic, every: int64(every)}
	t.rings.Store(new([]*ring))
	return t
}

// Topic returns the input topic whose records t samples.
func (t *Tracker) Topic() string { return t.topic }

func (t *Tracker) sampled(topic string, offset int64) bool {
	return t != nil && offset%t.every == 0 && topic == t.topic
}

// ring returns partition p's ring, made on first use.
func (t *Tracker) ring(p int32) *ring {
	if rs := *t.rings.Load(); int(p) < len(rs) && rs[p] != nil {
		return rs[p]
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := *t.rings.Load()
	if int(p) < len(rs) && rs[p] != nil {
		return rs[p]
	}
	grown := make([]*ring, max(len(rs), int(p)+1))
	copy(grown, rs)
	grown[p] = new(ring)
	t.rings.Store(&grown)
	return grown[p]
}

func (t *Tracker) slot(p int32, offset int64) *slot {
	return &t.ring(p)[(offset/t.every)%ringSize]
}

// Received notes that the consumer received the record at topic/p/offset.
func (t *Tracker) Received(topic string, p int32, offset int64) {
	if !t.sampled(topic, offset) {
		return
	}
	s := t.slot(p, offset)
	// The offset goes last: a reader that sees it sees the times of this record.
	s.offset.Store(-1)
	now := time.Now().UnixNano()
	s.received.Store(now)
	s.handed.Store(now)
	s.offset.Store(offset)
}

// Handed notes that the record at topic/p/offset was handed towards goka. The last call before
// the callback counts.
func (t *Tracker) Handed(topic string, p int32, offset int64) {
	if !t.sampled(topic, offset) {
		return
	}
	if s := t.slot(p, offset); s.offset.Load() == offset {
		s.handed.Store(time.Now().UnixNano())
	}
}

// Span is one sampled input's breakdown under way, from its callback to its acknowledgement.
type Span struct {
	t                                  *Tracker
	ts, received, handed, called, sent int64
}

// Start begins the breakdown of the input at p/offset stamped ts, as its callback starts. It
// returns nil for an input not sampled, one without a timestamp, or one whose receipt is no
// longer known.
func (t *Tracker) Start(p int32, offset int64, ts time.Time) *Span {
	if t == nil || !t.sampled(t.topic, offset) || ts.UnixMilli() <= 0 {
		return nil
	}
	s := t.slot(p, offset)
	received, handed := s.received.Load(), s.handed.Load()
	if s.offset.Load() != offset {
		t.missed.Add(1)
		return nil
	}
	return &Span{t: t, ts: ts.UnixNano(), received: received, handed: handed, called: time.Now().UnixNano()}
}

// Sent notes that the output was sent. A nil *Span notes nothing.
func (s *Span) Sent() {
	if s != nil {
		s.sent = time.Now().UnixNano()
	}
}

// Send notes that the output is being sent and returns done, which the producer calls with the
// output's acknowledgement, wrapped to note that first. A nil *Span returns done itself.
func (s *Span) Send(done func(error)) func(error) {
	if s == nil {
		return done
	}
	s.Sent()
	return func(err error) {
		s.Acked()
		done(err)
	}
}

// Acked notes that the output was acknowledged and records the breakdown. A nil *Span records
// nothing.
func (s *Span) Acked() {
	if s == nil {
		return
	}
	acked := time.Now().UnixNano()
	var d [numStages]int64
	// Clocks of other hosts (the input's timestamp) can run ahead: a negative part counts 0.
	d[Fetch] = max(0, s.received-s.ts)
	d[Hold] = max(0, s.handed-s.received)
	d[Queue] = max(0, s.called-s.handed)
	d[Callback] = max(0, s.sent-s.called)
	d[Produce] = max(0, acked-s.sent)
	s.t.observe(time.Duration(acked-s.ts), d)
}

func (t *Tracker) observe(total time.Duration, d [numStages]int64) {
	bounds := bandBounds()
	i := 0
	for i < numBounds && total > bounds[i] {
		i++
	}
	b := &t.bands[i]
	for st, n := range d {
		b.nanos[st].Add(n)
	}
	b.count.Add(1)
}

// Band is the sum of the breakdowns of the outputs whose total time fell in one band.
type Band struct {
	// Above and UpTo bound the outputs' total time, from the input's timestamp to the output's
	// acknowledgement: above Above, up to UpTo (0 for the last band, which has no bound).
	Above, UpTo time.Duration
	// Outputs counts the breakdowns.
	Outputs int64
	// Time sums each stage's time over them, by Stage.
	Time [numStages]time.Duration
}

// Label names the band as the metrics label it: "10ms-25ms", or "1s-" for the last.
func (b Band) Label() string {
	if b.UpTo == 0 {
		return b.Above.String() + "-"
	}
	return b.Above.String() + "-" + b.UpTo.String()
}

// Bands returns every band, fastest first, empty ones included.
func (t *Tracker) Bands() []Band {
	bounds := bandBounds()
	out := make([]Band, numBands)
	for i := range out {
		b := &t.bands[i]
		if i > 0 {
			out[i].Above = bounds[i-1]
		}
		if i < numBounds {
			out[i].UpTo = bounds[i]
		}
		// The count is read first and added last, so the sums hold every counted output's times.
		out[i].Outputs = b.count.Load()
		for st := range b.nanos {
			out[i].Time[st] = time.Duration(b.nanos[st].Load())
		}
	}
	return out
}

// Missed counts sampled inputs whose receipt was forgotten before their callback ran.
func (t *Tracker) Missed() int64 { return t.missed.Load() }
