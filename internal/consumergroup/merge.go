package consumergroup

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"

	"github.com/enricher/enricher/internal/stagetime"
)

// queueMax is how many records of one topic a merger buffers before it stops reading that
// topic's claim. sarama buffers ChannelBufferSize more behind it.
const queueMax = 1024

// feed is one topic's claim of a partition and the records received from it.
type feed struct {
	claim sarama.ConsumerGroupClaim
	in    <-chan *sarama.ConsumerMessage // nil once the claim's channel closed
	queue []*sarama.ConsumerMessage
	head  int
	// next is the offset after the last record received: the broker holds more while the
	// claim's high-water mark is above it.
	next int64
	// track, if set, notes each record received with the session's watermark.
	track *track
}

func (f *feed) buffered() bool { return f.head < len(f.queue) }

// room reports whether the feed may take more records from its claim.
func (f *feed) room() bool { return f.in != nil && len(f.queue)-f.head < queueMax }

// push appends m. The records handed on are dropped from the queue's front once there are as
// many as it may buffer: a queue that never runs empty (a steady backlog) stays bounded.
func (f *feed) push(m *sarama.ConsumerMessage) {
	if f.head > 0 && (f.head == len(f.queue) || f.head >= queueMax) {
		n := copy(f.queue, f.queue[f.head:])
		f.queue, f.head = f.queue[:n], 0
	}
	f.queue = append(f.queue, m)
	f.next = m.Offset + 1
	if f.track != nil {
		f.track.deliver(m.Offset)
	}
}

// pop drops the first buffered record, which was handed on.
func (f *feed) pop() {
	f.queue[f.head] = nil
	f.head++
}

// merger hands one partition's records of several topics to goka as one stream, in timestamp
// order (see order), each topic still in offset order.
type merger struct {
	partition int32
	feeds     []*feed
	sides     []side
	maxIdle   time.Duration
	lagWait   time.Duration
	stats     *PartitionStats
	log       *slog.Logger
	stages    *stagetime.Tracker
}

// longWait is how long a wait must last to be logged.
const longWait = time.Second

// newMerger returns a merger of claims; first names the topic that wins timestamp ties, and
// next[i] is the offset claims[i] starts at (resolved: never OffsetOldest or OffsetNewest).
func newMerger(claims []sarama.ConsumerGroupClaim, next []int64, first string, maxIdle, lagWait time.Duration, stats *PartitionStats, log *slog.Logger) *merger {
	m := &merger{partition: claims[0].Partition(), maxIdle: maxIdle, lagWait: lagWait, stats: stats, log: log,
		feeds: make([]*feed, len(claims)), sides: make([]side, len(claims))}
	for i, c := range claims {
		m.feeds[i] = &feed{claim: c, in: c.Messages(), next: next[i], queue: make([]*sarama.ConsumerMessage, 0, 64)}
		m.sides[i].first = c.Topic() == first
	}
	return m
}

// noteWith makes the merger note every record it receives with wm, before goka can see it.
func (m *merger) noteWith(wm *watermark) error {
	for _, f := range m.feeds {
		if f.track = wm.track(f.claim.Topic(), f.claim.Partition()); f.track == nil {
			return fmt.Errorf("claim %s/%d was not in the session's assignment", f.claim.Topic(), f.claim.Partition())
		}
	}
	return nil
}

// drain moves what feed i's claim has delivered into its queue, without blocking.
func (m *merger) drain(i int) {
	f := m.feeds[i]
	for f.room() {
		select {
		case msg, ok := <-f.in:
			m.received(i, msg, ok)
		default:
			return
		}
	}
}

// refresh brings the sides up to date with the feeds.
func (m *merger) refresh() {
	for i, f := range m.feeds {
		s := &m.sides[i]
		s.buffered = f.buffered()
		if s.buffered {
			s.ts = f.queue[f.head].Timestamp
			s.lagging = false
			s.waitSince = time.Time{}
		} else {
			s.lagging = f.in != nil && f.claim.HighWaterMarkOffset() > f.next
		}
	}
}

// run merges until ctx ends, every claim has closed, or done closes (the consumer of out
// returned). It never closes out.
func (m *merger) run(ctx context.Context, out chan<- *sarama.ConsumerMessage, done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var waiting bool // a wait spell is under way: m.stats counts it once and times it
	var waitBegan time.Time
	var waitFor string
	endWait := func(now time.Time) {
		if !waiting {
			return
		}
		waiting = false
		d := now.Sub(waitBegan)
		m.stats.waited(d)
		if d >= longWait {
			m.log.Info("partition waited for its other topic (timestamp alignment)", "partition", m.partition,
				"topic", waitFor, "waited", d.Round(time.Millisecond).String())
		}
	}
	for {
		for i := range m.feeds {
			m.drain(i)
		}
		if m.allClosed() {
			return
		}
		m.refresh()
		// Reading the clock was the merge's largest cost: it is needed only for a wait.
		var now time.Time
		if waiting || m.mayWait() {
			now = time.Now()
		}
		d := order(m.sides, now, m.maxIdle, m.lagWait)
		var send chan<- *sarama.ConsumerMessage
		var msg *sarama.ConsumerMessage
		var timeout <-chan time.Time
		switch {
		case d.pick >= 0:
			endWait(now)
			msg = m.feeds[d.pick].queue[m.feeds[d.pick].head]
			select {
			case out <- msg:
				m.emitted(d.pick, msg)
				continue
			default:
			}
			send = out
		case d.wait >= 0:
			if !waiting {
				waiting, waitBegan, waitFor = true, now, m.feeds[d.wait].claim.Topic()
				m.stats.beginWait(waitFor, d.lag)
			}
			timer.Reset(d.until.Sub(now))
			timeout = timer.C
		default:
			endWait(now)
		}
		// Block until a record can be handed on, one arrives, a wait runs out, or the session ends.
		var in0, in1 <-chan *sarama.ConsumerMessage
		if m.feeds[0].room() {
			in0 = m.feeds[0].in
		}
		if len(m.feeds) > 1 && m.feeds[1].room() {
			in1 = m.feeds[1].in
		}
		select {
		case send <- msg:
			m.emitted(d.pick, msg)
		case r, ok := <-in0:
			m.received(0, r, ok)
		case r, ok := <-in1:
			m.received(1, r, ok)
		case <-timeout:
			if d.lag {
				m.stats.LagWaitsExpired.Add(1)
				m.log.Warn("records the broker holds did not arrive in time: processing on without them (timestamp alignment)",
					"partition", m.partition, "topic", waitFor, "lag_wait", m.lagWait.String())
			} else {
				m.stats.IdleWaitsExpired.Add(1)
			}
		case <-done:
			return
		case <-ctx.Done():
			return
		}
		timer.Stop()
	}
}

// mayWait reports whether order may hold a record back for a side: one with nothing buffered
// that has records on the broker, or any empty one when MaxIdle is set.
func (m *merger) mayWait() bool {
	for i := range m.sides {
		s := &m.sides[i]
		if !s.buffered && !s.closed && (s.lagging || m.maxIdle > 0) {
			return true
		}
	}
	return false
}

func (m *merger) received(i int, msg *sarama.ConsumerMessage, ok bool) {
	if !ok {
		m.feeds[i].in = nil
		m.sides[i].closed = true
		return
	}
	m.feeds[i].push(msg)
	m.stages.Received(msg.Topic, msg.Partition, msg.Offset)
}

func (m *merger) emitted(i int, msg *sarama.ConsumerMessage) {
	m.feeds[i].pop()
	m.stages.Handed(msg.Topic, msg.Partition, msg.Offset)
	if missingTimestamp(msg.Timestamp) {
		m.stats.MissingTimestamps.Add(1)
		return
	}
	m.stats.advance(msg.Timestamp)
}

func (m *merger) allClosed() bool {
	for _, f := range m.feeds {
		if f.in != nil || f.buffered() {
			return false
		}
	}
	return true
}
