package consumergroup

import (
	"testing"
	"time"
)

func TestOrder(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	now := at(10_000)
	const maxIdle, lagWait = 500 * time.Millisecond, 2 * time.Second
	tests := []struct {
		name    string
		sides   []side
		maxIdle time.Duration
		want    decision
	}{
		{name: "nothing buffered", sides: []side{{}, {}},
			want: decision{pick: -1, wait: -1}},
		{name: "lower timestamp first", sides: []side{{buffered: true, ts: at(5)}, {buffered: true, ts: at(3)}},
			want: decision{pick: 1, wait: -1}},
		{name: "tie: the first topic", sides: []side{{buffered: true, ts: at(3)}, {buffered: true, ts: at(3), first: true}},
			want: decision{pick: 1, wait: -1}},
		{name: "tie, first topic listed first", sides: []side{{buffered: true, ts: at(3), first: true}, {buffered: true, ts: at(3)}},
			want: decision{pick: 0, wait: -1}},
		{name: "missing timestamp goes at once", sides: []side{{buffered: true, ts: at(1)}, {buffered: true, ts: time.Time{}}},
			want: decision{pick: 1, wait: -1}},
		{name: "other side lagging: wait", sides: []side{{buffered: true, ts: at(1)}, {lagging: true}},
			want: decision{pick: -1, wait: 1, until: now.Add(lagWait), lag: true}},
		{name: "other side caught up, max-idle 0: go", sides: []side{{buffered: true, ts: at(1)}, {}},
			want: decision{pick: 0, wait: -1}},
		{name: "other side caught up, max-idle set: wait", maxIdle: maxIdle, sides: []side{{buffered: true, ts: at(1)}, {}},
			want: decision{pick: -1, wait: 1, until: now.Add(maxIdle)}},
		{name: "idle wait under way", maxIdle: maxIdle, sides: []side{{buffered: true, ts: at(1)}, {waitSince: now.Add(-100 * time.Millisecond)}},
			want: decision{pick: -1, wait: 1, until: now.Add(maxIdle - 100*time.Millisecond)}},
		{name: "idle wait ran out", maxIdle: maxIdle, sides: []side{{buffered: true, ts: at(1)}, {waitSince: now.Add(-maxIdle)}},
			want: decision{pick: 0, wait: -1}},
		{name: "lag wait ran out", sides: []side{{buffered: true, ts: at(1)}, {lagging: true, waitSince: now.Add(-lagWait)}},
			want: decision{pick: 0, wait: -1}},
		{name: "closed side holds nothing back", maxIdle: maxIdle, sides: []side{{buffered: true, ts: at(1)}, {closed: true, lagging: true}},
			want: decision{pick: 0, wait: -1}},
		{name: "one side only", sides: []side{{buffered: true, ts: at(1)}},
			want: decision{pick: 0, wait: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := order(tt.sides, now, tt.maxIdle, lagWait)
			if got != tt.want {
				t.Fatalf("order = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A side that stays empty holds others back once per empty spell: the deadline starts at the
// first wait and is not restarted by later decisions.
func TestOrderWaitStartsOnce(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	sides := []side{{buffered: true, ts: t0}, {}}
	d := order(sides, t0, time.Second, time.Second)
	if d.wait != 1 || !sides[1].waitSince.Equal(t0) {
		t.Fatalf("first decision %+v, waitSince %v", d, sides[1].waitSince)
	}
	if d = order(sides, t0.Add(600*time.Millisecond), time.Second, time.Second); d.wait != 1 || !d.until.Equal(t0.Add(time.Second)) {
		t.Fatalf("second decision %+v", d)
	}
	if d = order(sides, t0.Add(time.Second), time.Second, time.Second); d.pick != 0 {
		t.Fatalf("after the deadline %+v", d)
	}
}
