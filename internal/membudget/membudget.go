package membudget

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Shares of the budget. What grows with the table gets 30% of it; the rest is for what does not
// (fetch and produce buffers, records in flight, the runtime) and for the slack Go's collector
// needs to stay under its limit without running constantly. At 10M keys on 12 partitions, a
// replica holding all twelve with 50% of 1 GiB given to caches and buffers peaked at 1,042 MiB.
const (
	cacheShare       = 0.15 // score caches, all partitions
	writeBufferShare = 0.10 // LevelDB memtables, all stores (two per store during a flush)
	blockCacheShare  = 0.05 // LevelDB block caches, all stores
)

// GoLimitShare is the part of the budget given to the Go runtime as its soft limit
// (GOMEMLIMIT): the process's resident memory also holds what Go does not count (thread
// stacks, memory the runtime has not yet returned to the system).
const GoLimitShare = 0.9

// Bounds on one store's LevelDB buffers: below the floor LevelDB writes tiny tables and
// compacts constantly; above goleveldb's defaults (4 MiB memtable, 8 MiB block cache) more
// memory bought nothing in the measurements.
const (
	minWriteBuffer = 512 << 10
	maxWriteBuffer = 4 << 20
	minBlockCache  = 512 << 10
	maxBlockCache  = 8 << 20
)

// CacheEntryBytes is what a score cache entry costs at most (store.DefaultCacheEntries' doc).
const CacheEntryBytes = 151

// Plan is one budget split for a replica that may hold up to stores local stores.
type Plan struct {
	// CacheEntries is the score cache's size per partition, at most the one asked for.
	CacheEntries int
	// WriteBuffer and BlockCache are each LevelDB store's memtable and block cache sizes.
	WriteBuffer int
	BlockCache  int
}

// Split divides limit bytes between stores local stores (the table's partition count bounds
// what one replica holds) and returns the plan, with the score cache at most cacheEntries per
// partition. A limit too small to give each store the floors is an error naming the least that
// would do.
func Split(limit int64, stores, cacheEntries int) (Plan, error) {
	if stores < 1 {
		stores = 1
	}
	floor := int64(stores) * (2*minWriteBuffer + minBlockCache)
	if float64(limit)*(writeBufferShare+blockCacheShare) < float64(floor) {
		least := int64(math.Ceil(float64(floor) / (writeBufferShare + blockCacheShare)))
		return Plan{}, fmt.Errorf("%s is too little for %d partitions' stores: give at least %s", Format(limit), stores, Format(least))
	}
	per := float64(limit) / float64(stores)
	return Plan{
		CacheEntries: min(cacheEntries, int(per*cacheShare/CacheEntryBytes)),
		WriteBuffer:  clamp(int(per*writeBufferShare/2), minWriteBuffer, maxWriteBuffer),
		BlockCache:   clamp(int(per*blockCacheShare), minBlockCache, maxBlockCache),
	}, nil
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

// units are the suffixes Parse takes, longest first so "MiB" is not read as "B".
func units() []struct {
	suffix string
	factor int64
} {
	return []struct {
		suffix string
		factor int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		// Kubernetes' binary quantities, so a chart can pass one value to a container's memory
		// limit and to --memory-limit.
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
		{"B", 1},
	}
}

// Parse reads a size: a whole number of bytes, or with a unit as GOMEMLIMIT and Kubernetes take
// them (KiB, MiB, GiB, TiB; Kubernetes' Ki, Mi, Gi, Ti; KB, MB, GB, TB; K, M, G, T as binary),
// for example 1GiB, 1Gi or 512M.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range units() {
		if strings.HasSuffix(t, u.suffix) {
			t, factor = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (for example 1GiB, 512MiB or 1073741824)", s)
	}
	if n > math.MaxInt64/factor {
		return 0, errors.New("size too large")
	}
	return n * factor, nil
}

// Format writes n bytes in the largest binary unit that divides it, as Parse reads it.
func Format(n int64) string {
	for _, u := range []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.factor && n%u.factor == 0 {
			return strconv.FormatInt(n/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
