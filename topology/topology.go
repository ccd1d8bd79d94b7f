package topology

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Errors a topology check returns; they are permanent: retrying does not help.
var (
	ErrNotCopartitioned = errors.New("topics are not co-partitioned")
	ErrMissingTopic     = errors.New("topic does not exist")
	ErrBadTable         = errors.New("table topic is misconfigured")
	// ErrNotDurable is a topic whose acknowledged writes may live on one broker, refused
	// under Spec.RequireDurable.
	ErrNotDurable = errors.New("topic cannot keep an acknowledged write through a broker's loss")
)

// Topics names the topics and the group of one enricher job.
type Topics struct {
	Group  string
	Input  string
	Scores string
	Output string
}

// DefaultTopics returns the default names.
func DefaultTopics() Topics {
	return Topics{Group: "enricher", Input: "input", Scores: "scores", Output: "output"}
}

// Table is goka's changelog topic of the group table: "<group>-table".
func (t Topics) Table() string { return string(goka.GroupTable(goka.Group(t.Group))) }

// DLQ is the dead-letter topic: "<group>-dlq".
func (t Topics) DLQ() string { return t.Group + "-dlq" }

// TransactionalCommitMetadata is the metadata of every offset the job commits under
// exactly-once: a savepoint reads it to know that the group's offsets and its changelog move
// together, in transactions.
const TransactionalCommitMetadata = "enricher:exactly-once"

// Validate reports a missing or clashing name.
func (t Topics) Validate() error {
	names := map[string]string{"group": t.Group, "input": t.Input, "scores": t.Scores, "output": t.Output}
	for _, k := range []string{"group", "input", "scores", "output"} {
		if strings.TrimSpace(names[k]) == "" {
			return fmt.Errorf("%s: name is empty", k)
		}
	}
	seen := map[string]string{}
	for _, n := range []struct{ role, name string }{
		{"input", t.Input}, {"scores", t.Scores}, {"output", t.Output}, {"table", t.Table()}, {"dlq", t.DLQ()},
	} {
		if other, ok := seen[n.name]; ok {
			return fmt.Errorf("%s and %s topics are both %q", other, n.role, n.name)
		}
		seen[n.name] = n.role
	}
	return nil
}

// Spec says how to create missing topics.
type Spec struct {
	// Partitions for input and scores when neither exists (when one does, the other gets its
	// count), and for the output topic.
	Partitions int32
	// ReplicationFactor for every topic created; -1 takes the broker's default.
	ReplicationFactor int16
	// TableConfigs are extra configs for the table topic (cleanup.policy=compact is always set);
	// they win over SavepointRetention.
	TableConfigs map[string]string
	// SavepointRetention is how long a savepoint of the table stays usable: the table topic is
	// created with min.compaction.lag.ms of it, so the log cleaner keeps every record younger
	// than that, and a savepoint's cut of the changelog stays whole for as long. The cost is
	// that a cold restore reads that much of each key's superseded values too. Zero is
	// DefaultSavepointRetention; negative leaves the broker's default (0: a savepoint is usable
	// only until the next compaction).
	SavepointRetention time.Duration
	// CreateStreams allows creating missing input, scores and output topics. The table and the
	// DLQ are the job's own and are always created when missing.
	CreateStreams bool
	// RequireDurable makes Ensure refuse, with ErrNotDurable, topics whose acknowledged writes
	// may live on one broker (Layout.Weak). The default, false, lets the caller warn instead.
	RequireDurable bool
}

// DefaultSavepointRetention is how long savepoints stay usable unless Spec says otherwise: a day
// covers a rollback after a bad deploy or a bad batch of scores, while a cold restore reads at
// most a day of superseded values besides the latest ones.
const DefaultSavepointRetention = 24 * time.Hour

// Layout is what Check found: the partition count input, scores and table share, and the
// output and dead-letter topics' own counts.
type Layout struct {
	Partitions       int32
	OutputPartitions int32
	DLQPartitions    int32
	// Weak says, for each of the job's own writes (table, output, DLQ) that an acknowledgement
	// does not keep through the loss of a broker, why, one line each; empty when every one is
	// kept (replication and min.insync.replicas of 2 or more).
	Weak []string
	// OutputMaxMessageBytes is the output topic's max.message.bytes: the largest record batch
	// it takes, so the bound on one output record.
	OutputMaxMessageBytes int
}

func ensure(ctx context.Context, adm *kadm.Client, t Topics, spec Spec) (Layout, error) {
	details, err := list(ctx, adm, t.Input, t.Scores, t.Output, t.Table(), t.DLQ())
	if err != nil {
		return Layout{}, err
	}
	n := spec.Partitions
	for _, name := range []string{t.Input, t.Scores} {
		if p, ok := details[name]; ok {
			n = p
			break
		}
	}
	if n <= 0 {
		return Layout{}, fmt.Errorf("partitions: must be positive to create topics, got %d", n)
	}
	if !spec.CreateStreams {
		// Refuse before creating the job's own topics, so a refused start changes nothing.
		if missing := absent(details, t.Input, t.Scores, t.Output); len(missing) > 0 {
			return Layout{}, missingTopics(missing)
		}
	}
	var created []string
	create := func(name string, partitions int32, configs map[string]string) error {
		if _, ok := details[name]; ok {
			return nil
		}
		created = append(created, name)
		return createTopic(ctx, adm, name, partitions, spec.ReplicationFactor, configs)
	}
	if spec.CreateStreams {
		for _, name := range []string{t.Input, t.Scores} {
			if err := create(name, n, nil); err != nil {
				return Layout{}, err
			}
		}
		if err := create(t.Output, spec.Partitions, nil); err != nil {
			return Layout{}, err
		}
	}
	if err := create(t.DLQ(), n, nil); err != nil {
		return Layout{}, err
	}
	// The table needs the inputs' partition count: create it only once they exist.
	if _, ok := details[t.Input]; ok || spec.CreateStreams {
		tableConfigs := map[string]string{"cleanup.policy": "compact"}
		switch r := spec.SavepointRetention; {
		case r == 0:
			tableConfigs["min.compaction.lag.ms"] = strconv.FormatInt(DefaultSavepointRetention.Milliseconds(), 10)
		case r > 0:
			tableConfigs["min.compaction.lag.ms"] = strconv.FormatInt(r.Milliseconds(), 10)
		}
		for k, v := range spec.TableConfigs {
			tableConfigs[k] = v
		}
		if err := create(t.Table(), n, tableConfigs); err != nil {
			return Layout{}, err
		}
	}
	if err := waitListed(ctx, adm, created); err != nil {
		return Layout{}, err
	}
	layout, err := check(ctx, adm, t)
	if err == nil && spec.RequireDurable && len(layout.Weak) > 0 {
		return Layout{}, fmt.Errorf("%w: %s", ErrNotDurable, strings.Join(layout.Weak, "; "))
	}
	return layout, err
}

// waitListed waits until the broker's metadata lists every named topic with its partitions: a
// created topic shows up in metadata a moment after CreateTopics returns.
func waitListed(ctx context.Context, adm *kadm.Client, names []string) error {
	if len(names) == 0 {
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		details, err := list(ctx, adm, names...)
		if err != nil {
			return err
		}
		if len(details) == len(names) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("created topics %v do not appear in the broker's metadata after 30s", names)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func check(ctx context.Context, adm *kadm.Client, t Topics) (Layout, error) {
	details, err := list(ctx, adm, t.Input, t.Scores, t.Output, t.Table(), t.DLQ())
	if err != nil {
		return Layout{}, err
	}
	if missing := absent(details, t.Input, t.Scores, t.Output, t.Table(), t.DLQ()); len(missing) > 0 {
		return Layout{}, missingTopics(missing)
	}
	in, sc, tb := details[t.Input], details[t.Scores], details[t.Table()]
	if in != sc {
		return Layout{}, fmt.Errorf("%w: topic %q has %d partitions but topic %q has %d; they must have the same count",
			ErrNotCopartitioned, t.Input, in, t.Scores, sc)
	}
	if tb != in {
		return Layout{}, fmt.Errorf("%w: table topic %q has %d partitions but topic %q has %d",
			ErrBadTable, t.Table(), tb, t.Input, in)
	}
	policy, err := configValue(ctx, adm, t.Table(), "cleanup.policy")
	if err != nil {
		return Layout{}, err
	}
	// compact alone: with delete beside it (compact,delete), retention deletes the scores of keys
	// not updated within retention.ms, silently.
	if strings.ReplaceAll(policy, " ", "") != "compact" {
		return Layout{}, fmt.Errorf("%w: table topic %q has cleanup.policy=%s, want compact alone (with delete, retention removes scores)",
			ErrBadTable, t.Table(), policy)
	}
	weak, err := weakTopics(ctx, adm, t.Table(), t.Output, t.DLQ())
	if err != nil {
		return Layout{}, err
	}
	v, err := configValue(ctx, adm, t.Output, "max.message.bytes")
	if err != nil {
		return Layout{}, err
	}
	maxBytes, err := strconv.Atoi(v)
	if err != nil || maxBytes <= 0 {
		return Layout{}, fmt.Errorf("topic %q: max.message.bytes=%q is not a positive number", t.Output, v)
	}
	return Layout{Partitions: in, OutputPartitions: details[t.Output], DLQPartitions: details[t.DLQ()], Weak: weak,
		OutputMaxMessageBytes: maxBytes}, nil
}

// weakTopics says, one line for each of names, where an acknowledged write may live on one
// broker only: with acks=all a write is acknowledged once the in-sync replicas have it, and the
// in-sync set may shrink to min.insync.replicas, so a write survives the loss of a broker only
// with replication and min.insync.replicas of 2 or more. A min.insync.replicas above the
// replication factor is named too: every write then fails.
func weakTopics(ctx context.Context, adm *kadm.Client, names ...string) ([]string, error) {
	md, err := listTopics(ctx, adm, names...)
	if err != nil {
		return nil, err
	}
	var weak []string
	for _, name := range names {
		rf := 0
		for _, p := range md[name].Partitions {
			if rf == 0 || len(p.Replicas) < rf {
				rf = len(p.Replicas)
			}
		}
		v, err := configValue(ctx, adm, name, "min.insync.replicas")
		if err != nil {
			return nil, err
		}
		isr, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("topic %q: min.insync.replicas=%q: %w", name, v, err)
		}
		switch {
		case isr > rf:
			weak = append(weak, fmt.Sprintf("topic %q has min.insync.replicas=%d above its replication factor %d: every write to it fails", name, isr, rf))
		case rf < 2:
			weak = append(weak, fmt.Sprintf("topic %q has replication factor %d: an acknowledged write lives on one broker", name, rf))
		case isr < 2:
			weak = append(weak, fmt.Sprintf("topic %q has min.insync.replicas=%d: an acknowledged write may live on its leader alone", name, isr))
		}
	}
	return weak, nil
}

// absent returns the names that details does not list.
func absent(details map[string]int32, names ...string) []string {
	var missing []string
	for _, name := range names {
		if _, ok := details[name]; !ok {
			missing = append(missing, name)
		}
	}
	return missing
}

func missingTopics(names []string) error {
	return fmt.Errorf("%w: %s (create them with `enricher topics create`, or run with --create-topics)",
		ErrMissingTopic, strings.Join(names, ", "))
}

// Permanent tells whether err is a topology error that retrying cannot fix.
func Permanent(err error) bool {
	return errors.Is(err, ErrNotCopartitioned) || errors.Is(err, ErrMissingTopic) || errors.Is(err, ErrBadTable) ||
		errors.Is(err, ErrNotDurable)
}

// TopicInfo describes one topic for `enricher topics describe`.
type TopicInfo struct {
	Role       string            `json:"role"`
	Name       string            `json:"name"`
	Exists     bool              `json:"exists"`
	Partitions int32             `json:"partitions,omitempty"`
	Replicas   int               `json:"replicas,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
}

func describe(ctx context.Context, adm *kadm.Client, t Topics) ([]TopicInfo, error) {
	roles := []struct{ role, name string }{
		{"input", t.Input}, {"scores", t.Scores}, {"output", t.Output}, {"table", t.Table()}, {"dlq", t.DLQ()},
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.name
	}
	md, err := listTopics(ctx, adm, names...)
	if err != nil {
		return nil, err
	}
	var existing []string
	for _, n := range names {
		if d, ok := md[n]; ok && d.Err == nil {
			existing = append(existing, n)
		}
	}
	configs := map[string]map[string]string{}
	if len(existing) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, existing...)
		if err != nil {
			return nil, fmt.Errorf("describe topic configs: %w", err)
		}
		for _, rc := range rcs {
			m := map[string]string{}
			for _, c := range rc.Configs {
				if c.Value != nil && c.Source.String() == "DYNAMIC_TOPIC_CONFIG" {
					m[c.Key] = *c.Value
				}
			}
			configs[rc.Name] = m
		}
	}
	out := make([]TopicInfo, len(roles))
	for i, r := range roles {
		info := TopicInfo{Role: r.role, Name: r.name}
		if d, ok := md[r.name]; ok && d.Err == nil {
			info.Exists = true
			info.Partitions = int32(len(d.Partitions))
			for _, p := range d.Partitions {
				info.Replicas = len(p.Replicas)
				break
			}
			info.Configs = configs[r.name]
		}
		out[i] = info
	}
	return out, nil
}

// listTopics describes the named topics. It asks for every topic and filters: a metadata
// request naming a topic that does not exist is retried by the client for seconds.
func listTopics(ctx context.Context, adm *kadm.Client, names ...string) (kadm.TopicDetails, error) {
	all, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	out := kadm.TopicDetails{}
	for _, n := range names {
		if d, ok := all[n]; ok {
			out[n] = d
		}
	}
	return out, nil
}

// list returns the partition count of each named topic that exists.
func list(ctx context.Context, adm *kadm.Client, names ...string) (map[string]int32, error) {
	md, err := listTopics(ctx, adm, names...)
	if err != nil {
		return nil, err
	}
	out := map[string]int32{}
	for name, d := range md {
		switch {
		case d.Err == nil:
			out[name] = int32(len(d.Partitions))
		case errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		default:
			return nil, fmt.Errorf("topic %q: %w", name, d.Err)
		}
	}
	return out, nil
}

func createTopic(ctx context.Context, adm *kadm.Client, name string, partitions int32, rf int16, configs map[string]string) error {
	var cfg map[string]*string
	if len(configs) > 0 {
		cfg = map[string]*string{}
		keys := make([]string, 0, len(configs))
		for k := range configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := configs[k]
			cfg[k] = &v
		}
	}
	_, err := adm.CreateTopic(ctx, partitions, rf, cfg, name)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q (%d partitions, replication %d): %w", name, partitions, rf, err)
	}
	return nil
}

// configValue returns a topic config. A topic just created may be unknown for a moment to the
// broker that answers (metadata spreads through a cluster): that is retried for a while.
func configValue(ctx context.Context, adm *kadm.Client, topic, key string) (string, error) {
	var rcs kadm.ResourceConfigs
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		rcs, err = adm.DescribeTopicConfigs(ctx, topic)
		if err == nil && len(rcs) > 0 && errors.Is(rcs[0].Err, kerr.UnknownTopicOrPartition) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(200 * time.Millisecond):
				continue
			}
		}
		if err != nil {
			return "", fmt.Errorf("describe configs of %q: %w", topic, err)
		}
		break
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return "", fmt.Errorf("describe configs of %q: %w", topic, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == key && c.Value != nil {
				return *c.Value, nil
			}
		}
	}
	return "", fmt.Errorf("topic %q reports no %s", topic, key)
}

func partitionCount(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	counts, err := list(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	n, ok := counts[topic]
	if !ok {
		return 0, fmt.Errorf("%w: %s (create it with `enricher topics create`)", ErrMissingTopic, topic)
	}
	return n, nil
}

// Ensure creates the missing topics per spec, then checks the layout as Check does.
func Ensure(ctx context.Context, c Cluster, t Topics, spec Spec) (Layout, error) {
	return withAdmin(c, func(adm *kadm.Client) (Layout, error) { return ensure(ctx, adm, t, spec) })
}

// Check verifies that every topic exists, that input, scores and the table have the same
// partition count, and that the table is compacted. A failed check wraps ErrMissingTopic,
// ErrNotCopartitioned or ErrBadTable.
func Check(ctx context.Context, c Cluster, t Topics) (Layout, error) {
	return withAdmin(c, func(adm *kadm.Client) (Layout, error) { return check(ctx, adm, t) })
}

// Describe lists the job's topics with partition counts, replication and explicitly set configs.
func Describe(ctx context.Context, c Cluster, t Topics) ([]TopicInfo, error) {
	return withAdmin(c, func(adm *kadm.Client) ([]TopicInfo, error) { return describe(ctx, adm, t) })
}

// PartitionCount returns the partition count of an existing topic; a missing one wraps
// ErrMissingTopic.
func PartitionCount(ctx context.Context, c Cluster, topic string) (int32, error) {
	return withAdmin(c, func(adm *kadm.Client) (int32, error) { return partitionCount(ctx, adm, topic) })
}

// withAdmin runs fn with an admin client of c, closed when fn returns.
func withAdmin[T any](c Cluster, fn func(*kadm.Client) (T, error)) (T, error) {
	adm, err := c.admin()
	if err != nil {
		var zero T
		return zero, err
	}
	defer adm.Close()
	return fn(adm)
}
