package consumergroup

import "time"

// side is what the ordering decision knows of one topic's records of a partition.
type side struct {
	// buffered says a record of this topic is waiting to be handed on; ts is its timestamp.
	buffered bool
	ts       time.Time
	// first makes this topic's record go first when timestamps are equal (the scores, so an
	// input stamped at exactly its score's time sees that score).
	first bool
	// closed: this topic's claim ended; it holds nothing back any more.
	closed bool
	// lagging: nothing is buffered, but the broker holds more of this topic than was received.
	lagging bool
	// waitSince is when the first buffered record of another topic began to wait for this one;
	// it is cleared when this topic delivers a record. A deadline runs from it, so a topic that
	// stays empty holds the others back once per empty spell, not once per record.
	waitSince time.Time
}

// decision says what to do next: hand on the buffered record of pick, or wait for topic wait
// until until (or until a record arrives). pick and wait are -1 when they do not apply.
type decision struct {
	pick, wait int
	until      time.Time
	// lag says the wait is for records the broker already holds, not for producers.
	lag bool
}

// missingTimestamp reports a record without a timestamp (-1 on the wire; sarama gives the zero
// time, plus the batch's delta).
func missingTimestamp(ts time.Time) bool { return ts.UnixMilli() < 0 }

// order picks, among the buffered records of one partition's topics, the one with the lowest
// timestamp, and holds it back while another topic may still deliver an earlier one:
//   - a topic with nothing buffered but more on the broker is waited for, up to lagWait (a
//     high-water mark can stay above the last record for good: transaction markers);
//   - with maxIdle > 0, a topic with nothing at all is waited for up to maxIdle.
//
// A record without a timestamp goes at once: its topic stays in offset order. now is the
// current time; order starts the wait deadlines it needs in sides[i].waitSince.
func order(sides []side, now time.Time, maxIdle, lagWait time.Duration) decision {
	pick := -1
	for i := range sides {
		s := &sides[i]
		if !s.buffered {
			continue
		}
		if missingTimestamp(s.ts) {
			return decision{pick: i, wait: -1}
		}
		if pick < 0 || s.ts.Before(sides[pick].ts) || (s.ts.Equal(sides[pick].ts) && s.first && !sides[pick].first) {
			pick = i
		}
	}
	if pick < 0 {
		return decision{pick: -1, wait: -1}
	}
	d := decision{pick: pick, wait: -1}
	for i := range sides {
		s := &sides[i]
		if i == pick || s.buffered || s.closed {
			continue
		}
		limit := maxIdle
		if s.lagging {
			limit = lagWait
		}
		if limit <= 0 {
			continue
		}
		if s.waitSince.IsZero() {
			s.waitSince = now
		}
		until := s.waitSince.Add(limit)
		if !now.Before(until) {
			continue // waited long enough: this empty spell holds nothing back any more
		}
		if d.wait < 0 || until.Before(d.until) {
			d.wait, d.until, d.lag = i, until, s.lagging
		}
	}
	if d.wait >= 0 {
		d.pick = -1
	}
	return d
}
