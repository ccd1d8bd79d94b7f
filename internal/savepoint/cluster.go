package savepoint

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/internal/scratch"
	"github.com/enricher/enricher/topology"
)

// ErrRefused is a restore that would be unsafe; nothing was written.
var ErrRefused = errors.New("restore refused")

// Cluster is what savepoint operations use to talk to Kafka.
type Cluster struct {
	Kafka  kafkaconf.Config
	Admin  *kadm.Client
	Client *kgo.Client
	// Progress, if set, observes changelog reads.
	Progress changelog.Progress
}

// Create records a savepoint of the job named by topics.
func Create(ctx context.Context, c Cluster, topics topology.Topics, toolVersion string) (*Savepoint, error) {
	cluster, err := c.Kafka.Cluster()
	if err != nil {
		return nil, err
	}
	layout, err := topology.Check(ctx, cluster, topics)
	if err != nil {
		return nil, err
	}
	membersBefore, err := members(ctx, c.Admin, topics.Group)
	if err != nil {
		return nil, err
	}
	// Committed offsets first, then the changelog's ends: every committed input's table writes
	// are then inside the cut. A group that commits in transactions (exactly-once) is cut at
	// its committed transactions instead, exactly, while it runs.
	committed, transactional, err := committedOffsets(ctx, c.Admin, topics.Group, topics.Input, topics.Scores)
	if err != nil {
		return nil, err
	}
	var ends map[int32]int64
	if transactional {
		committed, ends, err = transactionCut(ctx, c.Admin, topics)
	} else {
		var bounds map[int32]changelog.Bounds
		bounds, err = changelog.Offsets(ctx, c.Admin, topics.Table())
		ends = map[int32]int64{}
		for p, b := range bounds {
			ends[p] = b.End
		}
	}
	if err != nil {
		return nil, err
	}
	membersAfter, err := members(ctx, c.Admin, topics.Group)
	if err != nil {
		return nil, err
	}
	lag, err := changelog.CompactionLag(ctx, c.Admin, topics.Table())
	if err != nil {
		return nil, err
	}
	if lag <= 0 {
		return nil, fmt.Errorf("table topic %q has min.compaction.lag.ms=0: the log cleaner may remove values of the cut "+
			"at any moment, so a savepoint of it could not be restored safely; set the topic's min.compaction.lag.ms "+
			"(topics create --savepoint-retention sets it on new tables) and take the savepoint again", topics.Table())
	}
	n := layout.Partitions
	sp := &Savepoint{
		Format: FormatVersion, ToolVersion: toolVersion, Created: time.Now().UTC(), Group: topics.Group,
		Exact: transactional || membersBefore == 0 && membersAfter == 0, Transactional: transactional, Partitions: n,
		Input:                Topic{Name: topics.Input, Offsets: make([]int64, n)},
		Scores:               Topic{Name: topics.Scores, Offsets: make([]int64, n)},
		Table:                Topic{Name: topics.Table(), Offsets: make([]int64, n)},
		TableCompactionLagMs: lag.Milliseconds(),
	}
	for p := int32(0); p < n; p++ {
		sp.Input.Offsets[p] = committed[topics.Input][p]
		sp.Scores.Offsets[p] = committed[topics.Scores][p]
		sp.Table.Offsets[p] = ends[p]
	}
	return sp, sp.Validate()
}

// Check verifies that the savepoint fits the job named by topics and that every offset it
// records still exists in the broker.
func Check(ctx context.Context, c Cluster, sp *Savepoint, topics topology.Topics) error {
	if sp.Input.Name != topics.Input || sp.Scores.Name != topics.Scores {
		return fmt.Errorf("%w: the savepoint is of topics %q and %q, this job reads %q and %q",
			ErrRefused, sp.Input.Name, sp.Scores.Name, topics.Input, topics.Scores)
	}
	if err := CheckCompaction(ctx, c.Admin, sp, time.Now()); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	for _, t := range []struct {
		topic  Topic
		stream bool
	}{{sp.Input, true}, {sp.Scores, true}, {sp.Table, false}} {
		bounds, err := changelog.Offsets(ctx, c.Admin, t.topic.Name)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrRefused, err)
		}
		if int32(len(bounds)) != sp.Partitions {
			return fmt.Errorf("%w: topic %q has %d partitions, the savepoint %d", ErrRefused, t.topic.Name, len(bounds), sp.Partitions)
		}
		for p, o := range t.topic.Offsets {
			b := bounds[int32(p)]
			switch {
			case t.stream && o != NoOffset && o < b.Start:
				return fmt.Errorf("%w: offset %d of %s/%d no longer exists: the partition now starts at %d (retention deleted it)",
					ErrRefused, o, t.topic.Name, p, b.Start)
			case o > b.End:
				return fmt.Errorf("%w: offset %d of %s/%d is past the partition's end %d: the topic was truncated or recreated",
					ErrRefused, o, t.topic.Name, p, b.End)
			}
		}
	}
	return nil
}

// CheckCompaction says whether the savepoint's cut of the changelog is still whole at now, by the
// table topic's min.compaction.lag.ms as it is today (an operator may have changed it since).
func CheckCompaction(ctx context.Context, adm *kadm.Client, sp *Savepoint, now time.Time) error {
	lag, err := changelog.CompactionLag(ctx, adm, sp.Table.Name)
	if err != nil {
		return err
	}
	return sp.Usable(lag, now)
}

// Result says what a restore wrote.
type Result struct {
	Keys       int   // keys in the savepoint's table
	Values     int   // table records written with a value
	Tombstones int   // table records written to delete a key
	Offsets    int64 // partitions whose committed offsets were set
}

// Options tune a restore.
type Options struct {
	// Force lets a new version overwrite the offsets and table its group already has.
	Force bool
	// ScoresFromEnd commits the scores topic at its current end instead of the savepoint's
	// offsets: the scores written after the cut are not applied again (a rollback of a bad
	// batch of scores). By default the job continues exactly from the cut and re-reads them.
	ScoresFromEnd bool
}

// Restore makes the group of target continue from the savepoint. When target.Group is the
// savepoint's group it is a rollback: the group must have no live members. Otherwise it starts
// a new version of the job, and target must have no committed offsets and an empty table
// unless opts.Force is set. Everything is checked before anything is written.
func Restore(ctx context.Context, c Cluster, sp *Savepoint, target topology.Topics, spec topology.Spec, opts Options) (Result, error) {
	if err := Check(ctx, c, sp, target); err != nil {
		return Result{}, err
	}
	live, err := members(ctx, c.Admin, target.Group)
	if err != nil {
		return Result{}, err
	}
	if live > 0 {
		return Result{}, fmt.Errorf("%w: group %q has %d live members: stop its replicas first", ErrRefused, target.Group, live)
	}
	if target.Group != sp.Group {
		if err := checkFresh(ctx, c, sp, target, opts.Force); err != nil {
			return Result{}, err
		}
	}
	// The savepoint's table, read before anything is written (a read that fails refuses the
	// restore), and held on disk: a scratch table per partition, so memory stays bounded
	// whatever the table's size.
	want := make([]*scratch.Table, sp.Partitions)
	defer func() {
		for _, t := range want {
			if t != nil {
				_ = t.Close()
			}
		}
	}()
	for p := range want {
		if want[p], err = scratch.New(""); err != nil {
			return Result{}, err
		}
	}
	if err := loadPartitions(ctx, c, want, sp.Table.Name, sp.Until(), c.Progress); err != nil {
		return Result{}, fmt.Errorf("%w: read the savepoint's table: %v", ErrRefused, err)
	}

	// Checks are done: from here on, write.
	spec.CreateStreams = false
	cluster, err := c.Kafka.Cluster()
	if err != nil {
		return Result{}, err
	}
	if _, err := topology.Ensure(ctx, cluster, target, spec); err != nil {
		return Result{}, err
	}
	var res Result
	for p := int32(0); p < sp.Partitions; p++ {
		if err := restorePartition(ctx, c, target.Table(), p, want[p], &res); err != nil {
			return res, err
		}
	}
	n, err := commit(ctx, c.Admin, sp, target.Group, opts.ScoresFromEnd)
	res.Offsets = n
	return res, err
}

// loadPartitions applies each partition p of topic, up to until, to tables[p], reporting
// progress over all of them.
func loadPartitions(ctx context.Context, c Cluster, tables []*scratch.Table, topic string, until map[int32]int64, progress changelog.Progress) error {
	bounds, err := changelog.Offsets(ctx, c.Admin, topic)
	if err != nil {
		return err
	}
	targets, total, err := changelog.Targets(topic, bounds, until)
	if err != nil {
		return err
	}
	read := changelog.Reader(c.Kafka)
	var done int64
	for p, t := range tables {
		target, ok := targets[int32(p)]
		if !ok {
			continue // nothing to read
		}
		from := bounds[int32(p)].Start
		if _, err := t.Apply(ctx, read, topic, int32(p), from, target, func(offset int64) {
			if progress != nil {
				progress(done+offset+1-from, total)
			}
		}); err != nil {
			return err
		}
		done += target - from
	}
	return nil
}

// restorePartition writes to partition p of table the records that turn it into want: the
// table as it is now is read into a scratch table, the two are compared key by key, and the
// differences are written a batch at a time.
func restorePartition(ctx context.Context, c Cluster, table string, p int32, want *scratch.Table, res *Result) error {
	current, err := scratch.New("")
	if err != nil {
		return err
	}
	defer current.Close()
	if _, err := scratch.Load(ctx, c.Kafka, c.Admin, current, table, []int32{p}, nil, nil); err != nil {
		return err
	}
	const batch = 10_000
	var pending []*kgo.Record
	flush := func() error {
		err := changelog.Write(ctx, c.Client, table, p, pending)
		pending = pending[:0]
		return err
	}
	keys, err := scratch.Diff(current, want, func(r *kgo.Record) error {
		if r.Value == nil {
			res.Tombstones++
		} else {
			res.Values++
		}
		if pending = append(pending, r); len(pending) == batch {
			return flush()
		}
		return nil
	})
	res.Keys += keys
	if err != nil {
		return err
	}
	return flush()
}

// checkFresh refuses a new version whose group already has offsets or a table, unless force.
func checkFresh(ctx context.Context, c Cluster, sp *Savepoint, target topology.Topics, force bool) error {
	committed, _, err := committedOffsets(ctx, c.Admin, target.Group, target.Input, target.Scores)
	if err != nil {
		return err
	}
	hasOffsets := false
	for _, ps := range committed {
		for _, o := range ps {
			hasOffsets = hasOffsets || o != NoOffset
		}
	}
	tableRecords := int64(0)
	cluster, err := c.Kafka.Cluster()
	if err != nil {
		return err
	}
	counts, err := topology.PartitionCount(ctx, cluster, target.Table())
	switch {
	case errors.Is(err, topology.ErrMissingTopic):
	case err != nil:
		return err
	case counts != sp.Partitions:
		return fmt.Errorf("%w: table %q has %d partitions, the savepoint %d", ErrRefused, target.Table(), counts, sp.Partitions)
	default:
		bounds, err := changelog.Offsets(ctx, c.Admin, target.Table())
		if err != nil {
			return err
		}
		for _, b := range bounds {
			tableRecords += b.End - b.Start
		}
	}
	if (hasOffsets || tableRecords > 0) && !force {
		return fmt.Errorf("%w: group %q already has committed offsets or table records (%d): pass --force to overwrite them",
			ErrRefused, target.Group, tableRecords)
	}
	return nil
}

// commit sets group's committed offsets on input and scores to the savepoint's; a partition
// with NoOffset gets its current start offset, where a new group would begin. With
// scoresFromEnd the scores topic is committed at its current end.
func commit(ctx context.Context, adm *kadm.Client, sp *Savepoint, group string, scoresFromEnd bool) (int64, error) {
	var os kadm.Offsets
	for _, t := range []Topic{sp.Input, sp.Scores} {
		bounds, err := changelog.Offsets(ctx, adm, t.Name)
		if err != nil {
			return 0, err
		}
		for p, o := range t.Offsets {
			switch {
			case scoresFromEnd && t.Name == sp.Scores.Name:
				o = bounds[int32(p)].End
			case o == NoOffset:
				o = bounds[int32(p)].Start
			}
			os.AddOffset(t.Name, int32(p), o, -1)
		}
	}
	if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
		return 0, fmt.Errorf("commit offsets of group %q: %w", group, err)
	}
	return int64(2 * sp.Partitions), nil
}

// members returns how many live members group has (0 for a group that does not exist).
func members(ctx context.Context, adm *kadm.Client, group string) (int, error) {
	return whileCoordinatorStarts(ctx, func() (int, error) { return membersOnce(ctx, adm, group) })
}

func membersOnce(ctx context.Context, adm *kadm.Client, group string) (int, error) {
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("describe group %q: %w", group, err)
	}
	g, ok := groups[group]
	if !ok {
		return 0, nil
	}
	if errors.Is(g.Err, kerr.GroupIDNotFound) {
		return 0, nil
	}
	if g.Err != nil {
		return 0, fmt.Errorf("describe group %q: %w", group, g.Err)
	}
	return len(g.Members), nil
}

// committedOffsets returns group's committed offset per topic and partition, NoOffset where
// there is none, and whether every commit was made by an exactly-once transaction.
func committedOffsets(ctx context.Context, adm *kadm.Client, group string, topics ...string) (map[string]map[int32]int64, bool, error) {
	type result struct {
		offsets       map[string]map[int32]int64
		transactional bool
	}
	r, err := whileCoordinatorStarts(ctx, func() (result, error) {
		o, tx, err := committedOffsetsOnce(ctx, adm, group, topics...)
		return result{o, tx}, err
	})
	return r.offsets, r.transactional, err
}

// transactionCut returns the group's committed offsets and the changelog's stable ends at one
// point between two transactions: the ends read before and after the offsets are the same, so
// no transaction committed table writes in between, and the changelog read committed up to
// the ends holds exactly the table writes of the inputs and scores before the offsets.
func transactionCut(ctx context.Context, adm *kadm.Client, topics topology.Topics) (map[string]map[int32]int64, map[int32]int64, error) {
	for attempt := 0; ; attempt++ {
		before, err := changelog.StableEnds(ctx, adm, topics.Table())
		if err != nil {
			return nil, nil, err
		}
		// require_stable: offsets a transaction is committing are not read stale; the broker
		// answers UNSTABLE_OFFSET_COMMIT until that transaction ends, a try like any other.
		committed, _, err := committedOffsets(kadm.RequireStable(ctx), adm, topics.Group, topics.Input, topics.Scores)
		if err != nil && !errors.Is(err, kerr.UnstableOffsetCommit) {
			return nil, nil, err
		}
		var after map[int32]int64
		if err == nil {
			if after, err = changelog.StableEnds(ctx, adm, topics.Table()); err != nil {
				return nil, nil, err
			}
			if maps.Equal(before, after) {
				return committed, after, nil
			}
		}
		if attempt == transactionCutAttempts {
			return nil, nil, fmt.Errorf("no point between two transactions of group %q in %d attempts: "+
				"the changelog moved, or a transaction was still committing offsets, each time", topics.Group, attempt+1)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(time.Duration(attempt%5+1) * 7 * time.Millisecond):
		}
	}
}

// transactionCutAttempts bounds the tries to read offsets between two transactions; at 100 ms
// commit intervals the window between two commits is most of the interval.
const transactionCutAttempts = 100

func committedOffsetsOnce(ctx context.Context, adm *kadm.Client, group string, topics ...string) (map[string]map[int32]int64, bool, error) {
	resp, err := adm.FetchOffsetsForTopics(ctx, group, topics...)
	if errors.Is(err, kerr.GroupIDNotFound) {
		err, resp = nil, nil // a group that never committed: some brokers say so with an error
	}
	if err != nil {
		return nil, false, fmt.Errorf("fetch committed offsets of group %q: %w", group, err)
	}
	out := map[string]map[int32]int64{}
	for _, t := range topics {
		out[t] = map[int32]int64{}
	}
	var ferr error
	commits, transactional := 0, 0
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil && ferr == nil {
			ferr = fmt.Errorf("committed offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		at := o.At
		if at < 0 {
			at = NoOffset
		} else {
			commits++
			if o.Metadata == topology.TransactionalCommitMetadata {
				transactional++
			}
		}
		if m, ok := out[o.Topic]; ok {
			m[o.Partition] = at
		}
	})
	if ferr != nil {
		return nil, false, ferr
	}
	// Partitions without an entry have no commit.
	for _, t := range topics {
		starts, err := changelog.StartOffsets(ctx, adm, t)
		if err != nil {
			return nil, false, err
		}
		for p := range starts {
			if _, ok := out[t][p]; !ok {
				out[t][p] = NoOffset
			}
		}
	}
	return out, commits > 0 && transactional == commits, nil
}

// coordinatorWait bounds how long a call waits for the group coordinator to come up.
const coordinatorWait = 30 * time.Second

// whileCoordinatorStarts calls fn again, with backoff, while it fails because the group
// coordinator is not there yet: on a fresh cluster the broker creates __consumer_offsets on the
// first group request and answers COORDINATOR_NOT_AVAILABLE until it is loaded.
func whileCoordinatorStarts[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	deadline := time.Now().Add(coordinatorWait)
	wait := 100 * time.Millisecond
	for {
		v, err := fn()
		if err == nil || !coordinatorStarting(err) || time.Now().After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func coordinatorStarting(err error) bool {
	return errors.Is(err, kerr.CoordinatorNotAvailable) || errors.Is(err, kerr.CoordinatorLoadInProgress) ||
		errors.Is(err, kerr.NotCoordinator)
}
