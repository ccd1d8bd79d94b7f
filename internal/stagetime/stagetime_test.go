package stagetime

import (
	"errors"
	"testing"
	"time"
)

func TestBreakdown(t *testing.T) {
	tr := New("in", 4)
	ts := time.Now().Add(-30 * time.Millisecond)
	tr.Received("in", 2, 8)
	time.Sleep(3 * time.Millisecond)
	tr.Handed("in", 2, 8)
	time.Sleep(3 * time.Millisecond)
	s := tr.Start(2, 8, ts)
	if s == nil {
		t.Fatal("Start of a sampled, received input returned nil")
	}
	s.Sent()
	time.Sleep(time.Millisecond)
	s.Acked()

	var got Band
	for _, b := range tr.Bands() {
		if b.Outputs > 0 {
			if got.Outputs > 0 {
				t.Fatalf("outputs in two bands: %+v and %+v", got, b)
			}
			got = b
		}
	}
	if got.Outputs != 1 || got.Above != 25*time.Millisecond || got.UpTo != 50*time.Millisecond {
		t.Fatalf("band %s with %d outputs, want one output in 25ms-50ms", got.Label(), got.Outputs)
	}
	for _, c := range []struct {
		stage Stage
		least time.Duration
	}{
		{Fetch, 30 * time.Millisecond},
		{Hold, 3 * time.Millisecond},
		{Queue, 3 * time.Millisecond},
		{Callback, 0},
		{Produce, time.Millisecond},
	} {
		if d := got.Time[c.stage]; d < c.least || d > c.least+15*time.Millisecond {
			t.Errorf("%s took %s, want %s or a little more", c.stage, d, c.least)
		}
	}
	var sum time.Duration
	for _, d := range got.Time {
		sum += d
	}
	if sum > 50*time.Millisecond {
		t.Errorf("stages sum to %s, beyond the band", sum)
	}
}

func TestSampling(t *testing.T) {
	tr := New("in", 4)
	ts := time.Now()
	for _, c := range []struct {
		name   string
		topic  string
		offset int64
		want   bool
	}{
		{"sampled offset", "in", 12, true},
		{"offset between samples", "in", 13, false},
		{"other topic", "scores", 16, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr.Received(c.topic, 0, c.offset)
			if got := tr.Start(0, c.offset, ts) != nil; got != c.want && c.topic == "in" {
				t.Errorf("Start after Received: span %v, want %v", got, c.want)
			}
			if c.topic != "in" && tr.Start(0, c.offset, ts) != nil {
				t.Error("a record of another topic was noted as an input")
			}
		})
	}
}

func TestForgottenReceipt(t *testing.T) {
	tr := New("in", 1)
	tr.Received("in", 0, 5)
	tr.Received("in", 0, 5+ringSize) // the same slot, a ring's length later
	if s := tr.Start(0, 5, time.Now()); s != nil {
		t.Fatal("a receipt overwritten by a later record still gave a span")
	}
	if tr.Missed() != 1 {
		t.Fatalf("missed %d, want 1", tr.Missed())
	}
	if s := tr.Start(0, 5+ringSize, time.Now()); s == nil {
		t.Fatal("the later record's receipt was lost")
	}
	if s := tr.Start(0, 0, time.Time{}); s != nil {
		t.Fatal("an input without a timestamp gave a span")
	}
}

func TestNil(t *testing.T) {
	var tr *Tracker
	tr.Received("in", 0, 0)
	tr.Handed("in", 0, 0)
	s := tr.Start(0, 0, time.Now())
	s.Sent()
	s.Acked()
	if s != nil {
		t.Fatal("a nil tracker gave a span")
	}
}

func TestBandLabels(t *testing.T) {
	bands := New("in", 0).Bands()
	want := []string{"0s-5ms", "5ms-10ms", "10ms-25ms", "25ms-50ms", "50ms-100ms", "100ms-250ms", "250ms-500ms", "500ms-1s", "1s-"}
	if len(bands) != len(want) {
		t.Fatalf("%d bands, want %d", len(bands), len(want))
	}
	for i, b := range bands {
		if b.Label() != want[i] {
			t.Errorf("band %d is %q, want %q", i, b.Label(), want[i])
		}
	}
}

// Send wraps the producer's callback: the wrapped callback records the breakdown and then calls
// the original with the acknowledgement's error; a nil span hands the callback back unwrapped.
func TestSendWrapsTheAcknowledgement(t *testing.T) {
	for _, sampled := range []bool{true, false} {
		tr := New("in", 1)
		var span *Span
		if sampled {
			tr.Received("in", 0, 5)
			span = tr.Start(0, 5, time.Now())
		}
		var calls int
		var got error
		want := errors.New("broker said no")
		span.Send(func(err error) { calls++; got = err })(want)
		if calls != 1 || got != want {
			t.Fatalf("sampled %v: callback called %d times with %v, want once with %v", sampled, calls, got, want)
		}
		var outputs int64
		for _, b := range tr.Bands() {
			outputs += b.Outputs
		}
		if wantOutputs := map[bool]int64{true: 1, false: 0}[sampled]; outputs != wantOutputs {
			t.Fatalf("sampled %v: %d breakdowns, want %d", sampled, outputs, wantOutputs)
		}
	}
}
