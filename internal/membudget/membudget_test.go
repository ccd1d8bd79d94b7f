package membudget

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"1GiB", 1 << 30, false},
		{"512MiB", 512 << 20, false},
		{"512M", 512 << 20, false},
		{"1Gi", 1 << 30, false},
		{"768Mi", 768 << 20, false},
		{"2G", 2 << 30, false},
		{"1500MB", 1_500_000_000, false},
		{"1073741824", 1 << 30, false},
		{" 64 KiB ", 64 << 10, false},
		{"0", 0, false},
		{"", 0, true},
		{"GiB", 0, true},
		{"-1GiB", 0, true},
		{"1.5GiB", 0, true},
		{"10PiB", 0, true},
		{"9999999999TiB", 0, true},
	} {
		got, err := Parse(tc.in)
		if tc.bad {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   int64
		stores  int
		entries int
		want    Plan
		bad     string
	}{
		{"1 GiB over 12 stores: the cache is cut, the memtable keeps goleveldb's default",
			1 << 30, 12, 250_000, Plan{CacheEntries: 88_885, WriteBuffer: 4 << 20, BlockCache: 4_473_924}, ""},
		{"8 GiB: the cache asked for fits", 8 << 30, 12, 250_000, Plan{CacheEntries: 250_000, WriteBuffer: 4 << 20, BlockCache: 8 << 20}, ""},
		{"256 MiB over 64 stores: too little for the floors", 256 << 20, 64, 250_000, Plan{}, "give at least 640MiB"},
		{"1 GiB over 64 stores", 1 << 30, 64, 250_000, Plan{CacheEntries: 16_666, WriteBuffer: 838_860, BlockCache: 838_860}, ""},
		{"no cache asked", 1 << 30, 4, 0, Plan{CacheEntries: 0, WriteBuffer: 4 << 20, BlockCache: 8 << 20}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Split(tc.limit, tc.stores, tc.entries)
			if tc.bad != "" {
				assert.ErrorContains(t, err, tc.bad)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			used := int64(tc.stores) * (int64(got.CacheEntries)*CacheEntryBytes + 2*int64(got.WriteBuffer) + int64(got.BlockCache))
			assert.LessOrEqual(t, used, tc.limit/2, "what grows with the state stays within half the budget")
		})
	}
}

func TestFormat(t *testing.T) {
	assert.Equal(t, "1GiB", Format(1<<30))
	assert.Equal(t, "1536MiB", Format(1536<<20))
	assert.Equal(t, "1000B", Format(1000))
	for _, n := range []int64{1 << 30, 3 << 20, 12345} {
		back, err := Parse(Format(n))
		require.NoError(t, err)
		assert.Equal(t, n, back)
	}
}

// FuzzParse: no input panics, and what parses is never negative and reads back the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1GiB", "512M", "0", "1500MB", "-1", "9999999999TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("%q parsed as %d", s, n)
		}
		back, err := Parse(Format(n))
		if err != nil || back != n {
			t.Fatalf("%q: %d formats as %q, which reads back as %d, %v", s, n, Format(n), back, err)
		}
	})
}
