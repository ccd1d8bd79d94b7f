package savepoint

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func valid() *Savepoint {
	return &Savepoint{
		Format: FormatVersion, ToolVersion: "test", Created: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
		Group: "g", Partitions: 2,
		Input:  Topic{Name: "input", Offsets: []int64{5, NoOffset}},
		Scores: Topic{Name: "scores", Offsets: []int64{0, 3}},
		Table:  Topic{Name: "g-table", Offsets: []int64{7, 0}},
	}
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, valid().Encode(&buf))
	got, err := Parse(&buf)
	require.NoError(t, err)
	assert.Equal(t, valid(), got)
	assert.Equal(t, map[int32]int64{0: 7, 1: 0}, got.Until())
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Savepoint)
		want   string
	}{
		{"future format", func(s *Savepoint) { s.Format = 2 }, "format 2"},
		{"no group", func(s *Savepoint) { s.Group = " " }, "no group"},
		{"no partitions", func(s *Savepoint) { s.Partitions = 0 }, "partitions 0"},
		{"no time", func(s *Savepoint) { s.Created = time.Time{} }, "no creation time"},
		{"short offsets", func(s *Savepoint) { s.Scores.Offsets = []int64{1} }, "1 offsets for 2 partitions"},
		{"negative committed offset", func(s *Savepoint) { s.Input.Offsets[0] = -2 }, "offset -2"},
		{"no-offset marker on the table", func(s *Savepoint) { s.Table.Offsets[1] = NoOffset }, "offset -1"},
		{"unnamed topic", func(s *Savepoint) { s.Scores.Name = "" }, "has no name"},
		{"same topic twice", func(s *Savepoint) { s.Scores.Name = "input" }, "appears twice"},
		{"table of another group", func(s *Savepoint) { s.Table.Name = "other-table" }, "not the group's table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := valid()
			tc.mutate(sp)
			err := sp.Validate()
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseRefusesWhatItDoesNotUnderstand(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          ``,
		"not json":       `savepoint`,
		"unknown field":  `{"format":1,"surprise":true}`,
		"trailing data":  `{"format":1} {}`,
		"wrong type":     `{"format":"1"}`,
		"truncated json": `{"format":1,"group":"g"`,
	} {
		_, err := Parse(strings.NewReader(in))
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
}

func TestSummary(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, valid().Summary(&buf))
	out := buf.String()
	assert.Contains(t, out, `savepoint of group "g"`)
	assert.Contains(t, out, "at-least-once cut")
	assert.Contains(t, out, "none", "a partition without a commit")
	assert.Contains(t, out, "changelog end offsets at the cut, summed over partitions: 7")
}

// A savepoint is usable while it is younger than the table's compaction lag, and refused with
// ErrTooOld from then on.
func TestUsable(t *testing.T) {
	sp := valid()
	for _, tc := range []struct {
		name string
		age  time.Duration
		lag  time.Duration
		ok   bool
	}{
		{"young", time.Hour, 24 * time.Hour, true},
		{"just inside", 24*time.Hour - time.Millisecond, 24 * time.Hour, true},
		{"as old as the lag", 24 * time.Hour, 24 * time.Hour, false},
		{"older", 48 * time.Hour, 24 * time.Hour, false},
		{"no compaction lag", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sp.Usable(tc.lag, sp.Created.Add(tc.age))
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrTooOld)
			assert.Contains(t, err.Error(), `table topic "g-table"`)
		})
	}
}

func TestSummaryShowsUntilWhen(t *testing.T) {
	sp := valid()
	sp.TableCompactionLagMs = (2 * time.Hour).Milliseconds()
	var buf bytes.Buffer
	require.NoError(t, sp.Summary(&buf))
	assert.Contains(t, buf.String(), "usable until: 2026-11-24T14:00:00Z (table min.compaction.lag.ms=7200000 when taken)")
}

// FuzzParse: no input panics or is accepted without being valid.
func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	_ = valid().Encode(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":1,"partitions":1048577}`))
	f.Add([]byte(`{"format":1,"input":{"offsets":[-1,-1]}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sp, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		if verr := sp.Validate(); verr != nil {
			t.Fatalf("accepted an invalid savepoint: %v", verr)
		}
		var out bytes.Buffer
		if err := sp.Summary(&out); err != nil {
			t.Fatal(err)
		}
	})
}
