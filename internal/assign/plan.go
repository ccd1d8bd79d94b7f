package assign

import (
	"cmp"
	"slices"
)

// Member is one member of the group as the plan sees it.
type Member struct {
	// ID is the member id the coordinator gave it.
	ID string
	// Process is the id persisted in its state directory: the same across its restarts.
	Process string
	// Active are the partitions it processed in the last session.
	Active []int32
	// Stores maps each partition it has a local store of to the changelog offset the store has
	// applied.
	Stores map[int32]int64
}

// Bounds is a changelog partition's log start offset and end (high-water mark).
type Bounds struct{ Start, End int64 }

// Settings bound the plan.
type Settings struct {
	// StandbyReplicas is how many standby copies each partition gets, on members other than
	// its active one.
	StandbyReplicas int
	// MaxWarmups is how many warm-up copies the group restores at a time.
	MaxWarmups int
	// AcceptableLag is how many changelog records a store may trail the changelog's end by and
	// still take over a partition.
	AcceptableLag int64
}

// Result is the plan: per member id, its active, standby and warm-up partitions, each sorted.
// Every member has an entry in Active, an empty one included.
type Result struct {
	Active  map[string][]int32
	Standby map[string][]int32
	Warmup  map[string][]int32
}

// planner holds the inputs and the state of one Compute.
type planner struct {
	members    []Member
	partitions []int32
	bounds     map[int32]Bounds
	s          Settings
	prev       map[int32]int // partition -> index of its previous owner
}

// Compute plans the group: members in any order, the partitions of input and scores, and the
// changelog's bounds per partition (a partition without bounds counts as empty).
func Compute(members []Member, partitions []int32, bounds map[int32]Bounds, s Settings) Result {
	pl := &planner{members: slices.Clone(members), partitions: slices.Clone(partitions), bounds: bounds, s: s,
		prev: map[int32]int{}}
	// The order every tie is broken by: process ids survive restarts, member ids do not.
	slices.SortFunc(pl.members, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Process, b.Process), cmp.Compare(a.ID, b.ID))
	})
	slices.Sort(pl.partitions)
	for i, m := range pl.members {
		for _, p := range m.Active {
			if _, taken := pl.prev[p]; !taken {
				pl.prev[p] = i
			}
		}
	}
	res := Result{Active: map[string][]int32{}, Standby: map[string][]int32{}, Warmup: map[string][]int32{}}
	for _, m := range pl.members {
		res.Active[m.ID] = []int32{}
	}
	if len(pl.members) == 0 {
		return res
	}
	owner := pl.balanced()
	warm := pl.warmups(owner)
	standby := pl.standbys(owner, warm)
	for _, p := range pl.partitions {
		id := pl.members[owner[p]].ID
		res.Active[id] = append(res.Active[id], p)
	}
	for p, ms := range warm {
		for _, i := range ms {
			res.Warmup[pl.members[i].ID] = append(res.Warmup[pl.members[i].ID], p)
		}
	}
	for p, ms := range standby {
		for _, i := range ms {
			res.Standby[pl.members[i].ID] = append(res.Standby[pl.members[i].ID], p)
		}
	}
	for _, m := range []map[string][]int32{res.Warmup, res.Standby} {
		for _, ps := range m {
			slices.Sort(ps)
		}
	}
	return res
}

// lag is how many changelog records member i's store of p trails the changelog's end by: 0
// for p's previous owner, which processed it up to now, and a whole restore for a member
// without a store of p or with one older than the changelog's start.
func (pl *planner) lag(i int, p int32) int64 {
	if owner, ok := pl.prev[p]; ok && owner == i {
		return 0
	}
	b := pl.bounds[p]
	off, ok := pl.members[i].Stores[p]
	if !ok || off+1 < b.Start {
		return b.End - b.Start
	}
	return max(0, b.End-(off+1))
}

func (pl *planner) caughtUp(i int, p int32) bool { return pl.lag(i, p) <= pl.s.AcceptableLag }

// bestOtherLag is the lowest lag any member but i has for p: how much p is wanted elsewhere.
func (pl *planner) bestOtherLag(i int, p int32) int64 {
	best := int64(-1)
	for j := range pl.members {
		if j != i {
			if l := pl.lag(j, p); best < 0 || l < best {
				best = l
			}
		}
	}
	return best
}

// balanced places every partition within the quotas: previous owners keep theirs, giving up
// first the ones another member has the best store of, and the rest go to the member under
// quota with the best store of each.
func (pl *planner) balanced() map[int32]int {
	n, k := len(pl.partitions), len(pl.members)
	base, extra := n/k, n%k
	owner := map[int32]int{}
	count := make([]int, k)
	var over [][]int32 // per member, previous partitions beyond its base quota
	for i := range pl.members {
		var mine []int32
		for _, p := range pl.partitions {
			if o, ok := pl.prev[p]; ok && o == i {
				mine = append(mine, p)
			}
		}
		// Keep first what no other member holds a good copy of.
		slices.SortStableFunc(mine, func(a, b int32) int {
			return cmp.Compare(pl.bestOtherLag(i, b), pl.bestOtherLag(i, a))
		})
		keep := min(base, len(mine))
		for _, p := range mine[:keep] {
			owner[p] = i
		}
		count[i] = keep
		over = append(over, mine[keep:])
	}
	for i := range pl.members {
		if extra > 0 && len(over[i]) > 0 {
			owner[over[i][0]] = i
			count[i]++
			extra--
		}
	}
	var free []int32
	for _, p := range pl.partitions {
		if _, ok := owner[p]; !ok {
			free = append(free, p)
		}
	}
	// Partitions some member holds a good copy of are matched first.
	bestLag := func(p int32) int64 { return pl.bestOtherLag(-1, p) }
	slices.SortStableFunc(free, func(a, b int32) int { return cmp.Compare(bestLag(a), bestLag(b)) })
	for _, p := range free {
		pick := -1
		for i := range pl.members {
			if count[i] > base || (count[i] == base && extra == 0) {
				continue
			}
			if pick < 0 || cmp.Or(cmp.Compare(pl.lag(i, p), pl.lag(pick, p)), cmp.Compare(count[i], count[pick])) < 0 {
				pick = i
			}
		}
		if count[pick] == base {
			extra--
		}
		owner[p] = pick
		count[pick]++
	}
	return owner
}

// warmups moves each partition whose balanced owner would have to restore it to a member that
// is caught up, if one is, and gives the balanced owner a warm-up copy while the group has
// fewer than MaxWarmups. It changes owner in place and returns the warm-up members per
// partition.
func (pl *planner) warmups(owner map[int32]int) map[int32][]int {
	count := make([]int, len(pl.members))
	for _, i := range owner {
		count[i]++
	}
	warm := map[int32][]int{}
	planned := 0
	for _, p := range pl.partitions {
		target := owner[p]
		if pl.caughtUp(target, p) {
			continue
		}
		pick := -1
		for i := range pl.members {
			if i == target || !pl.caughtUp(i, p) {
				continue
			}
			if pick < 0 || cmp.Or(cmp.Compare(count[i], count[pick]), cmp.Compare(pl.lag(i, p), pl.lag(pick, p))) < 0 {
				pick = i
			}
		}
		if pick < 0 {
			continue // nobody holds a copy close enough: the balanced owner restores it
		}
		owner[p] = pick
		count[target]--
		count[pick]++
		if planned < pl.s.MaxWarmups {
			warm[p] = []int{target}
			planned++
		}
	}
	return warm
}

// standbys places StandbyReplicas copies of each partition on members other than its owner:
// its warm-up member first, then members caught up with it, then the fewest standbys, the best
// store and the members' order. A
// member takes more than its share of the copies only when no other member can: a replica
// that holds old stores of many partitions would otherwise get all of their copies.
func (pl *planner) standbys(owner map[int32]int, warm map[int32][]int) map[int32][]int {
	need := min(pl.s.StandbyReplicas, len(pl.members)-1)
	out := map[int32][]int{}
	if need <= 0 {
		return out
	}
	share := (len(pl.partitions)*need + len(pl.members) - 1) / len(pl.members)
	count := make([]int, len(pl.members))
	for _, p := range pl.byOwner(owner) {
		have := len(warm[p])
		taken := map[int]bool{owner[p]: true}
		for _, i := range warm[p] {
			taken[i] = true
		}
		for ; have < need; have++ {
			pick := -1
			for i := range pl.members {
				if taken[i] {
					continue
				}
				if pick < 0 || cmp.Or(cmp.Compare(b2i(count[i] >= share), b2i(count[pick] >= share)),
					cmp.Compare(b2i(!pl.caughtUp(i, p)), b2i(!pl.caughtUp(pick, p))),
					cmp.Compare(count[i], count[pick]), cmp.Compare(pl.lag(i, p), pl.lag(pick, p))) < 0 {
					pick = i
				}
			}
			taken[pick] = true
			count[pick]++
			out[p] = append(out[p], pick)
		}
	}
	return out
}

// byOwner orders the partitions round-robin over their owners (each owner's in order), so
// copies placed greedily in this order spread evenly: in partition order, the owner of the
// first partitions would hand its copies to the same members.
func (pl *planner) byOwner(owner map[int32]int) []int32 {
	per := make([][]int32, len(pl.members))
	for _, p := range pl.partitions {
		per[owner[p]] = append(per[owner[p]], p)
	}
	var out []int32
	for round := 0; len(out) < len(pl.partitions); round++ {
		for _, ps := range per {
			if round < len(ps) {
				out = append(out, ps[round])
			}
		}
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
