package changelog

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/kafkaconf"
)

// Table is the latest value per key of one partition.
type Table map[string][]byte

// Partitions holds one Table per partition.
type Partitions map[int32]Table

// Bounds are a partition's log start offset and end offset (high-water mark).
type Bounds struct{ Start, End int64 }

// Offsets returns the bounds of every partition of topic.
func Offsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]Bounds, error) {
	starts, err := StartOffsets(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	ends, err := listed(ctx, topic, "end", adm.ListEndOffsets)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]Bounds, len(ends))
	for p, end := range ends {
		out[p] = Bounds{Start: starts[p], End: end}
	}
	return out, nil
}

// StartOffsets returns every partition's log start offset.
func StartOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	return listed(ctx, topic, "start", adm.ListStartOffsets)
}

// StableEnds returns every partition's last stable offset: below it every record's
// transaction has committed or aborted; a topic written without transactions has it at its end.
func StableEnds(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	return listed(ctx, topic, "stable", adm.ListCommittedOffsets)
}

// listed returns the offset list gives every partition of topic (what names the offset), or
// the first partition's error.
func listed(ctx context.Context, topic, what string, list func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
	offsets, err := list(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("%s offsets of %s: %w", what, topic, err)
	}
	out := map[int32]int64{}
	var ferr error
	offsets.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && ferr == nil {
			ferr = fmt.Errorf("%s offset of %s/%d: %w", what, topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	if ferr != nil {
		return nil, ferr
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions (does it exist?)", topic)
	}
	return out, nil
}

// Progress observes a read: how many of the offsets to read it is through, and how many there
// are in all. Compaction leaves gaps in a changelog's offsets, so fewer records than that are
// read; read reaches total when the read is complete.
type Progress func(read, total int64)

// Read reads every partition of topic from its start up to, not including, until[p] (a
// partition missing from until is read to its current end) and returns the latest value per
// key, in memory; a tombstone removes its key. It is for tables known to be small (tests); the
// whole-table tools hold a table on disk instead (package scratch). It fails if a partition's records before until[p] are no
// longer in the topic (its log start moved past them).
func Read(ctx context.Context, kc kafkaconf.Config, adm *kadm.Client, topic string, until map[int32]int64, progress Progress) (Partitions, error) {
	out := Partitions{}
	bounds, err := ReadTopic(ctx, kc, adm, topic, until, progress, func(r *kgo.Record) {
		t := out[r.Partition]
		if t == nil {
			t = Table{}
			out[r.Partition] = t
		}
		if r.Value == nil {
			delete(t, string(r.Key))
		} else {
			t[string(r.Key)] = r.Value
		}
	})
	if err != nil {
		return nil, err
	}
	for p := range bounds {
		if out[p] == nil {
			out[p] = Table{}
		}
	}
	return out, nil
}

// ReadTopic calls fn, in offset order per partition, with every committed record of topic
// (any topic: a changelog, the dead-letter topic, an output) from its start up to, not
// including, until[p] (a partition missing from until is read to its current end). It returns
// the bounds of the partitions as they were when the read started.
func ReadTopic(ctx context.Context, kc kafkaconf.Config, adm *kadm.Client, topic string, until map[int32]int64, progress Progress, fn func(*kgo.Record)) (map[int32]Bounds, error) {
	bounds, err := Offsets(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	targets, total, err := Targets(topic, bounds, until)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		if progress != nil {
			progress(0, 0)
		}
		return bounds, nil
	}
	start := map[int32]kgo.Offset{}
	pos := newPositions(bounds, targets)
	for p := range targets {
		start[p] = kgo.NewOffset().AtStart()
	}
	report := func() {
		if progress != nil {
			progress(pos.read, total)
		}
	}
	err = consume(ctx, kc, topic, start, maps.Clone(targets), func(partition int32, records []*kgo.Record, through int64) error {
		for _, r := range records {
			fn(r)
		}
		pos.advance(partition, through+1)
		return nil
	}, report)
	if err != nil {
		return nil, err
	}
	pos.complete()
	report()
	return bounds, nil
}

// Targets returns, for every partition of topic with records to read, the offset a read up to
// until (a partition missing from until: to its end) stops before, and the offsets to read in
// all. It fails when until is past a partition's end (the topic was truncated or recreated) or
// when records before until are gone (the log start moved past them).
func Targets(topic string, bounds map[int32]Bounds, until map[int32]int64) (map[int32]int64, int64, error) {
	targets := map[int32]int64{}
	var total int64
	for p, b := range bounds {
		target := b.End
		if u, ok := until[p]; ok {
			if u > b.End {
				return nil, 0, fmt.Errorf("%s/%d ends at offset %d, before the requested %d: the topic was truncated or recreated", topic, p, b.End, u)
			}
			target = u
		}
		if b.Start > 0 && b.Start >= target && target > 0 {
			return nil, 0, fmt.Errorf("%s/%d starts at offset %d: the records before %d are gone", topic, p, b.Start, target)
		}
		if target > b.Start {
			targets[p] = target
			total += target - b.Start
		}
	}
	for p := range until {
		if _, ok := bounds[p]; !ok {
			return nil, 0, fmt.Errorf("%s has no partition %d", topic, p)
		}
	}
	return targets, total, nil
}

// positions tracks how far a scan is through the offsets it reads, per partition.
type positions struct {
	at, target map[int32]int64
	read       int64
}

func newPositions(bounds map[int32]Bounds, targets map[int32]int64) *positions {
	p := &positions{at: map[int32]int64{}, target: targets}
	for part := range targets {
		p.at[part] = bounds[part].Start
	}
	return p
}

// advance notes that partition part was read up to, not including, offset next.
func (p *positions) advance(part int32, next int64) {
	next = min(next, p.target[part])
	if next > p.at[part] {
		p.read += next - p.at[part]
		p.at[part] = next
	}
}

// complete notes that every partition was read to its target: records after the last one read
// were compacted away.
func (p *positions) complete() {
	for part, t := range p.target {
		p.advance(part, t)
	}
}

// Write produces records to partition p of topic, in order, and waits for every one to be
// acknowledged by all in-sync replicas.
func Write(ctx context.Context, cl *kgo.Client, topic string, p int32, records []*kgo.Record) error {
	const batch = 10000
	for i := 0; i < len(records); i += batch {
		chunk := records[i:min(i+batch, len(records))]
		for _, r := range chunk {
			r.Topic, r.Partition = topic, p
		}
		if err := cl.ProduceSync(ctx, chunk...).FirstErr(); err != nil {
			return fmt.Errorf("write %s/%d: %w", topic, p, err)
		}
	}
	return nil
}

// ReadPartition calls fn with the committed records of one partition of topic from offset from
// up to, not including, end, in offset order, one fetched batch at a time, and the offset the
// read is through (a transaction marker after the batch's last record counts: a read reaches a
// partition's end even when a marker ends it). It stops at the first error fn returns. A
// partition whose last records before end were removed (only a log truncation does that) is
// read until ctx ends.
func ReadPartition(ctx context.Context, kc kafkaconf.Config, topic string, partition int32, from, end int64, fn func(records []*kgo.Record, through int64) error) error {
	if from >= end {
		return nil
	}
	return consume(ctx, kc, topic, map[int32]kgo.Offset{partition: kgo.NewOffset().At(from)}, map[int32]int64{partition: end},
		func(_ int32, records []*kgo.Record, through int64) error { return fn(records, through) }, nil)
}

// Reader returns ReadPartition with kc's settings, as a function of the partition to read (the
// store package's PartitionReader).
func Reader(kc kafkaconf.Config) func(ctx context.Context, topic string, partition int32, from, end int64, fn func([]*kgo.Record, int64) error) error {
	return func(ctx context.Context, topic string, partition int32, from, end int64, fn func([]*kgo.Record, int64) error) error {
		return ReadPartition(ctx, kc, topic, partition, from, end, fn)
	}
}

// consume reads each partition p of topic from start[p] up to, not including, targets[p] with
// one client, handing fn each fetched partition's committed records in offset order and the
// offset that fetch read through; polled, if set, is called after every poll. A partition stops
// being fetched once it reaches its target.
func consume(ctx context.Context, kc kafkaconf.Config, topic string, start map[int32]kgo.Offset, targets map[int32]int64,
	fn func(partition int32, records []*kgo.Record, through int64) error, polled func()) error {
	maxBytes := int32(wholeTopicFetchBytes)
	if len(start) == 1 {
		maxBytes = partitionFetchBytes
	}
	cl, err := committedReader(kc, topic, start, maxBytes)
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(targets) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return fmt.Errorf("read %s/%d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		var ferr error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			target, open := targets[fp.Partition]
			if !open || ferr != nil {
				return
			}
			records := fp.Records
			for i, r := range records {
				if r.Offset >= target {
					records = records[:i]
					break
				}
			}
			if len(records) > 0 {
				ferr = fn(fp.Partition, withoutControl(records), records[len(records)-1].Offset)
			}
			if n := len(fp.Records); n > 0 && fp.Records[n-1].Offset >= target-1 {
				delete(targets, fp.Partition)
				cl.PauseFetchPartitions(map[string][]int32{topic: {fp.Partition}})
			}
		})
		if ferr != nil {
			return ferr
		}
		if polled != nil {
			polled()
		}
	}
	return nil
}

// committedReader is a client reading partitions of topic from start, committed records only
// (an aborted transaction's records never enter a table), fetching up to maxBytes at once.
// Fetch sizes of the changelog readers. A replica restores and follows each of its partitions
// with a client of its own, at once (twelve standby and warm-up copies on a joiner of a
// 12-partition group), and a client holds a fetch or two beside the one being applied: at 16 MiB
// a partition a joiner at 10M keys peaked at 1.6 GiB. 4 MiB is about 40,000 records of the
// benchmark's shape a fetch. A read of the whole topic by one client (the tools) takes more.
const (
	partitionFetchBytes  = 4 << 20
	wholeTopicFetchBytes = 64 << 20
)

// Control records are kept, for their offsets only: they show a read reach a target or an end
// that a commit or abort marker ends.
func committedReader(kc kafkaconf.Config, topic string, start map[int32]kgo.Offset, maxBytes int32) (*kgo.Client, error) {
	return kc.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchMaxBytes(maxBytes), kgo.FetchMaxPartitionBytes(min(maxBytes, partitionFetchBytes)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
}

// withoutControl returns records without their transaction markers, records itself when it has
// none.
func withoutControl(records []*kgo.Record) []*kgo.Record {
	for i, r := range records {
		if r.Attrs.IsControl() {
			out := slices.Clone(records[:i])
			for _, r := range records[i+1:] {
				if !r.Attrs.IsControl() {
					out = append(out, r)
				}
			}
			return out
		}
	}
	return records
}

// FollowPartition calls fn with the committed records of one partition of topic from offset
// from on, in offset order, one fetched batch at a time, with the offset the read is through
// and the partition's end as that fetch saw it (its last stable offset: below it every
// transaction has ended). It follows the partition until ctx ends, then returns ctx's error, or
// returns the first error of a fetch or of fn.
func FollowPartition(ctx context.Context, kc kafkaconf.Config, topic string, partition int32, from int64, fn func(records []*kgo.Record, through, end int64) error) error {
	cl, err := committedReader(kc, topic, map[int32]kgo.Offset{partition: kgo.NewOffset().At(from)}, partitionFetchBytes)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return fmt.Errorf("follow %s/%d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		var ferr error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if n := len(fp.Records); n > 0 && ferr == nil {
				ferr = fn(withoutControl(fp.Records), fp.Records[n-1].Offset, fp.LastStableOffset)
			}
		})
		if ferr != nil {
			return ferr
		}
	}
}
