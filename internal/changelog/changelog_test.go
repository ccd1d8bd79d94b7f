package changelog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name          string
		current, want Table
		records       []string // key=value, or key~ for a tombstone
	}{
		{"empty to empty", Table{}, Table{}, nil},
		{"fill an empty table", Table{}, Table{"b": []byte("2"), "a": []byte("1")}, []string{"a=1", "b=2"}},
		{"equal tables write nothing", Table{"a": []byte("1")}, Table{"a": []byte("1")}, nil},
		{"changed value", Table{"a": []byte("1")}, Table{"a": []byte("9")}, []string{"a=9"}},
		{"extra key is deleted", Table{"a": []byte("1"), "x": []byte("5")}, Table{"a": []byte("1")}, []string{"x~"}},
		{"both", Table{"a": []byte("1"), "x": []byte("5")}, Table{"a": []byte("2"), "b": []byte("3")}, []string{"a=2", "b=3", "x~"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range Diff(tc.current, tc.want) {
				if r.Value == nil {
					got = append(got, string(r.Key)+"~")
				} else {
					got = append(got, string(r.Key)+"="+string(r.Value))
				}
			}
			assert.Equal(t, tc.records, got)
		})
	}
}

func TestPartitionsKeys(t *testing.T) {
	assert.Equal(t, 3, Partitions{0: {"a": nil, "b": nil}, 1: {"c": nil}}.Keys())
	assert.Equal(t, 0, Partitions{}.Keys())
}

// A compacted changelog has gaps in its offsets: progress counts offsets, so it reaches the
// total when the read is done, however many records were read.
func TestPositions(t *testing.T) {
	p := newPositions(map[int32]Bounds{0: {Start: 2, End: 12}, 1: {Start: 0, End: 5}}, map[int32]int64{0: 12, 1: 5})
	p.advance(0, 4) // records 2 and 3
	p.advance(0, 9) // offset 8 after a gap
	assert.Equal(t, int64(7), p.read)
	p.advance(0, 9) // nothing new
	p.advance(1, 7) // past the target is capped
	assert.Equal(t, int64(12), p.read)
	p.complete() // offsets 9..11 were compacted away
	assert.Equal(t, int64(15), p.read, "the offsets of both partitions")
}

func TestWithoutControl(t *testing.T) {
	data := func(o int64) *kgo.Record { return &kgo.Record{Offset: o} }
	control := func(o int64) *kgo.Record {
		return &kgo.Record{Offset: o, Attrs: kgo.NewRecordAttrs(kgo.RecordAttrsOpts{Transactional: true, Control: true})}
	}
	for _, tc := range []struct {
		name    string
		records []*kgo.Record
		want    []int64
	}{
		{"no markers", []*kgo.Record{data(1), data(2)}, []int64{1, 2}},
		{"markers between and at the end", []*kgo.Record{data(1), control(2), data(3), control(4)}, []int64{1, 3}},
		{"only a marker", []*kgo.Record{control(7)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			for _, r := range withoutControl(tc.records) {
				got = append(got, r.Offset)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
