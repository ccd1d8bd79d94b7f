package assign

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parts returns partitions 0..n-1.
func parts(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// full returns bounds [0, end) for partitions 0..n-1.
func full(n int, end int64) map[int32]Bounds {
	b := map[int32]Bounds{}
	for i := 0; i < n; i++ {
		b[int32(i)] = Bounds{Start: 0, End: end}
	}
	return b
}

// stores returns stores of ps, each at offset at.
func stores(at int64, ps ...int32) map[int32]int64 {
	m := map[int32]int64{}
	for _, p := range ps {
		m[p] = at
	}
	return m
}

// defaults is no standby, two warm-ups, and an acceptable lag of 100 records.
func defaults() Settings { return Settings{StandbyReplicas: 0, MaxWarmups: 2, AcceptableLag: 100} }

func TestCompute(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []Member
		n       int
		end     int64
		s       Settings
		// bounds, when set, replaces the bounds of these partitions.
		bounds  map[int32]Bounds
		active  map[string][]int32
		warmup  map[string][]int32
		standby map[string][]int32
	}{
		{
			name:    "a new group splits evenly, in process order",
			members: []Member{{ID: "b", Process: "p2"}, {ID: "a", Process: "p1"}, {ID: "c", Process: "p3"}},
			n:       6, end: 1000, s: defaults(),
			active: map[string][]int32{"a": {0, 3}, "b": {1, 4}, "c": {2, 5}},
		},
		{
			name:    "an empty table: every store is caught up",
			members: []Member{{ID: "a", Process: "1", Active: parts(4)}, {ID: "b", Process: "2"}},
			n:       4, end: 0, s: defaults(),
			active: map[string][]int32{"a": {0, 1}, "b": {2, 3}},
		},
		{
			name: "a joiner without stores warms up, the owner keeps processing",
			members: []Member{{ID: "a", Process: "1", Active: parts(4), Stores: stores(999, parts(4)...)},
				{ID: "b", Process: "2"}},
			n: 4, end: 1000, s: defaults(),
			active: map[string][]int32{"a": {0, 1, 2, 3}, "b": {}},
			warmup: map[string][]int32{"b": {2, 3}},
		},
		{
			name: "no more warm-ups at a time than asked",
			members: []Member{{ID: "a", Process: "1", Active: parts(6)},
				{ID: "b", Process: "2"}, {ID: "c", Process: "3"}},
			n: 6, end: 1000, s: Settings{MaxWarmups: 1, AcceptableLag: 100},
			active: map[string][]int32{"a": parts(6), "b": {}, "c": {}},
			warmup: map[string][]int32{"b": {2}},
		},
		{
			name: "a warm-up within the acceptable lag takes its partition",
			members: []Member{{ID: "a", Process: "1", Active: parts(4), Stores: stores(999, parts(4)...)},
				{ID: "b", Process: "2", Stores: map[int32]int64{2: 950, 3: 500}}},
			n: 4, end: 1000, s: defaults(),
			active: map[string][]int32{"a": {0, 1, 3}, "b": {2}},
			warmup: map[string][]int32{"b": {3}},
		},
		{
			name:    "sticky: members keep what they had",
			members: []Member{{ID: "a", Process: "1", Active: []int32{1, 2}}, {ID: "b", Process: "2", Active: []int32{0, 3}}},
			n:       4, end: 1000, s: defaults(),
			active: map[string][]int32{"a": {1, 2}, "b": {0, 3}},
		},
		{
			name: "a restarted replica, new member id, gets its partitions back by its stores",
			members: []Member{
				{ID: "a", Process: "1", Active: []int32{0, 1, 2, 3}, Stores: stores(999, 0, 1, 2, 3)},
				{ID: "b-new", Process: "2", Stores: stores(990, 2, 3)},
			},
			n: 4, end: 1000, s: defaults(),
			active: map[string][]int32{"a": {0, 1}, "b-new": {2, 3}},
		},
		{
			name: "the owner died: its partitions go to the members holding standby copies",
			members: []Member{
				{ID: "a", Process: "1", Active: []int32{0, 1}, Stores: stores(999, 0, 1, 4, 5)},
				{ID: "b", Process: "2", Active: []int32{2, 3}, Stores: stores(999, 2, 3)},
			},
			// c owned 4 and 5 and a held their standbys; c is gone.
			n: 6, end: 1000, s: Settings{StandbyReplicas: 1, MaxWarmups: 2, AcceptableLag: 100},
			active:  map[string][]int32{"a": {0, 1, 4, 5}, "b": {2, 3}},
			warmup:  map[string][]int32{"b": {5}},
			standby: map[string][]int32{"a": {2, 3}, "b": {0, 1, 4}},
		},
		{
			name: "standbys never sit with the active copy and are spread",
			members: []Member{{ID: "a", Process: "1", Active: []int32{0, 1}}, {ID: "b", Process: "2", Active: []int32{2, 3}},
				{ID: "c", Process: "3", Active: []int32{4, 5}}},
			n: 6, end: 1000, s: Settings{StandbyReplicas: 1, MaxWarmups: 2, AcceptableLag: 100},
			active:  map[string][]int32{"a": {0, 1}, "b": {2, 3}, "c": {4, 5}},
			standby: map[string][]int32{"a": {2, 4}, "b": {0, 5}, "c": {1, 3}},
		},
		{
			name:    "more standbys asked than members: one on each other member",
			members: []Member{{ID: "a", Process: "1", Active: []int32{0}}, {ID: "b", Process: "2", Active: []int32{1}}},
			n:       2, end: 10, s: Settings{StandbyReplicas: 3, AcceptableLag: 100},
			active:  map[string][]int32{"a": {0}, "b": {1}},
			standby: map[string][]int32{"a": {1}, "b": {0}},
		},
		{
			name: "a store behind the changelog's start is a whole restore",
			members: []Member{{ID: "a", Process: "1", Active: []int32{0, 1}},
				{ID: "b", Process: "2", Stores: map[int32]int64{1: 3}}},
			n: 2, end: 1000, s: defaults(), bounds: map[int32]Bounds{1: {Start: 500, End: 1000}},
			active: map[string][]int32{"a": {0, 1}, "b": {}},
			warmup: map[string][]int32{"b": {1}},
		},
		{
			name:    "more members than partitions: some idle",
			members: []Member{{ID: "a", Process: "1"}, {ID: "b", Process: "2"}, {ID: "c", Process: "3"}},
			n:       2, end: 0, s: defaults(),
			active: map[string][]int32{"a": {0}, "b": {1}, "c": {}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bounds := full(tc.n, tc.end)
			for p, b := range tc.bounds {
				bounds[p] = b
			}
			got := Compute(tc.members, parts(tc.n), bounds, tc.s)
			assert.Equal(t, tc.active, got.Active, "active")
			assert.Equal(t, orEmpty(tc.warmup), got.Warmup, "warm-up")
			assert.Equal(t, orEmpty(tc.standby), got.Standby, "standby")
			checkInvariants(t, got, tc.members, tc.n, tc.s)
		})
	}
}

func orEmpty(m map[string][]int32) map[string][]int32 {
	if m == nil {
		return map[string][]int32{}
	}
	return m
}

// checkInvariants holds for every plan: each partition active on exactly one member, no copy
// of a partition on its active member, no member with two roles for one partition, at most
// MaxWarmups warm-ups.
func checkInvariants(t *testing.T, r Result, members []Member, n int, s Settings) {
	t.Helper()
	role := map[int32]map[string]string{}
	set := func(p int32, m, what string) {
		if role[p] == nil {
			role[p] = map[string]string{}
		}
		require.Empty(t, role[p][m], "partition %d on %s is %s and %s", p, m, role[p][m], what)
		role[p][m] = what
	}
	active := 0
	for m, ps := range r.Active {
		for _, p := range ps {
			set(p, m, "active")
			active++
		}
	}
	require.Equal(t, n, active, "every partition active once")
	warm := 0
	for m, ps := range r.Warmup {
		for _, p := range ps {
			set(p, m, "warm-up")
			warm++
		}
	}
	require.LessOrEqual(t, warm, s.MaxWarmups)
	for m, ps := range r.Standby {
		for _, p := range ps {
			set(p, m, "standby")
		}
	}
	require.Len(t, r.Active, len(members), "every member has an entry")
}

// Many random groups: the invariants hold, the plan is the same however the members are
// ordered, and a settled group (every owner caught up, the counts balanced) is left as it is.
func TestComputeInvariants(t *testing.T) {
	for seed := 0; seed < 300; seed++ {
		n, k := 1+seed%13, 1+seed%5
		var members []Member
		for i := 0; i < k; i++ {
			m := Member{ID: fmt.Sprintf("m%d", (i*7+seed)%k), Process: fmt.Sprintf("p%d", i), Stores: map[int32]int64{}}
			for p := 0; p < n; p++ {
				switch (p*31 + i*17 + seed) % 5 {
				case 0:
					m.Active = append(m.Active, int32(p))
				case 1:
					m.Stores[int32(p)] = int64((p*13 + seed) % 1000)
				}
			}
			members = append(members, m)
		}
		s := Settings{StandbyReplicas: seed % 3, MaxWarmups: 1 + seed%3, AcceptableLag: 100}
		got := Compute(members, parts(n), full(n, 1000), s)
		checkInvariants(t, got, members, n, s)
		rev := slices.Clone(members)
		slices.Reverse(rev)
		assert.Equal(t, got, Compute(rev, parts(n), full(n, 1000), s), "seed %d: order-independent", seed)

		settled := make([]Member, len(members))
		for i, m := range members {
			settled[i] = Member{ID: m.ID, Process: m.Process, Active: got.Active[m.ID]}
		}
		again := Compute(settled, parts(n), full(n, 1000), Settings{MaxWarmups: 2, AcceptableLag: 100})
		if balancedCounts(got.Active) {
			assert.Equal(t, got.Active, again.Active, "seed %d: a settled, balanced group does not move", seed)
		}
	}
}

func balancedCounts(active map[string][]int32) bool {
	lo, hi := -1, -1
	for _, ps := range active {
		if lo < 0 || len(ps) < lo {
			lo = len(ps)
		}
		hi = max(hi, len(ps))
	}
	return hi-lo <= 1
}
