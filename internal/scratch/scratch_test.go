package scratch

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// reader serves records as a changelog partition would, one batch per call of fn.
func reader(records ...*kgo.Record) func(ctx context.Context, topic string, partition int32, from, end int64, fn func([]*kgo.Record, int64) error) error {
	return func(_ context.Context, _ string, _ int32, from, end int64, fn func([]*kgo.Record, int64) error) error {
		var batch []*kgo.Record
		for i, r := range records {
			r.Offset = int64(i)
			if r.Offset >= from && r.Offset < end {
				batch = append(batch, r)
			}
		}
		if len(batch) == 0 {
			return nil
		}
		return fn(batch, batch[len(batch)-1].Offset)
	}
}

func rec(k, v string) *kgo.Record {
	r := &kgo.Record{Key: []byte(k)}
	if v != "" {
		r.Value = []byte(v)
	}
	return r
}

func table(t *testing.T, records ...*kgo.Record) *Table {
	t.Helper()
	tb, err := New(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = tb.Close() })
	n, err := tb.Apply(context.Background(), reader(records...), "t", 0, 0, int64(len(records)), nil)
	require.NoError(t, err)
	require.Equal(t, int64(len(records)), n)
	return tb
}

func contents(t *testing.T, tb *Table) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, tb.Each(func(k, v []byte) error { out[string(k)] = string(v); return nil }))
	return out
}

func TestApplyKeepsTheLatestValue(t *testing.T) {
	tb := table(t, rec("a", "1"), rec("b", "1"), rec("a", "2"), rec("c", "1"), rec("b", ""))
	assert.Equal(t, map[string]string{"a": "2", "c": "1"}, contents(t, tb), "the latest value wins; a tombstone deletes")
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name          string
		current, want []*kgo.Record
		records       []string // key=value, key= for a tombstone, in order
		keys          int
	}{
		{"equal", []*kgo.Record{rec("a", "1")}, []*kgo.Record{rec("a", "1")}, nil, 1},
		{"both empty", nil, nil, nil, 0},
		{"changed, added, removed", []*kgo.Record{rec("a", "1"), rec("b", "1"), rec("d", "1")},
			[]*kgo.Record{rec("a", "2"), rec("c", "1"), rec("d", "1")}, []string{"a=2", "b=", "c=1"}, 3},
		{"current empty", nil, []*kgo.Record{rec("x", "1"), rec("y", "2")}, []string{"x=1", "y=2"}, 2},
		{"want empty", []*kgo.Record{rec("x", "1"), rec("y", "2")}, nil, []string{"x=", "y="}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			keys, err := Diff(table(t, tc.current...), table(t, tc.want...), func(r *kgo.Record) error {
				got = append(got, string(r.Key)+"="+string(r.Value))
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, tc.records, got)
			assert.Equal(t, tc.keys, keys)
		})
	}
}
