package changelog

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/twmb/franz-go/pkg/kgo"
)

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
