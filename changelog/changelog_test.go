package changelog

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
