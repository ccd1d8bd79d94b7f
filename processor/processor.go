package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/job"
	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/internal/partition"
	"github.com/enricher/enricher/internal/store"
	"github.com/enricher/enricher/topology"
)

// Guarantee is how often an input's output may be written.
type Guarantee string

const (
	// AtLeastOnce commits an input's offset after its output and table writes are acknowledged:
	// after a crash the inputs since the last commit are processed again, and their outputs
	// appear twice. Outputs carry the input's topic, partition and offset in headers to drop
	// duplicates by.
	AtLeastOnce Guarantee = "at-least-once"
	// ExactlyOnce commits outputs, dead letters, table writes and offsets in one Kafka
	// transaction per Config.CommitInterval: a read_committed reader sees each output once.
	ExactlyOnce Guarantee = "exactly-once"
)

// The partitioners a Config may name: how a key is mapped to its partition. Producers of the
// input and scores topics must use the same one.
const (
	// Murmur2 is the Java client's default partitioner (and Kafka Streams').
	Murmur2 = "murmur2"
	// FNV1a is goka's and sarama's default hash partitioner.
	FNV1a = "fnv1a"
	// CRC32 is librdkafka's consistent partitioner.
	CRC32 = "crc32"
)

// Config configures a Processor. Every field but Cluster.Brokers and StateDir has a default,
// which its comment states.
type Config struct {
	// Cluster is where the topics live. Cluster.Brokers is required.
	Cluster topology.Cluster
	// Topics names the consumer group and the topics; zero is topology.DefaultTopics(). The
	// table ("<group>-table") and the dead-letter topic ("<group>-dlq") are created when
	// missing.
	Topics topology.Topics
	// CreateTopics creates missing input, scores and output topics too, with Partitions
	// partitions and ReplicationFactor replicas. The default, false, refuses to start without
	// them.
	CreateTopics bool
	// Partitions is the partition count of the topics CreateTopics creates; zero is 4.
	Partitions int32
	// ReplicationFactor is that of every topic created; zero is -1, the broker's default.
	ReplicationFactor int16
	// MemoryLimit, when positive, is the process's memory budget in bytes: the score caches
	// (15% of it) and each local store's LevelDB memtables and block cache (15% between them)
	// are sized from it, for as many stores as the table has partitions. Zero
	// (the default) sizes them by their defaults. It sets no process-wide limit: pair it with
	// GOMEMLIMIT or debug.SetMemoryLimit, as the enricher command does.
	MemoryLimit int64
	// StateMinFree is the free space, in bytes, the filesystem of StateDir must keep for the
	// local stores. Run does not start below it, and a running processor that falls below it
	// stops as when its context ends (flushing and committing) and Run returns an error that
	// wraps ErrStateDiskFull. Zero is 64 MiB; negative turns the check off.
	StateMinFree int64
	// RebuildRecreatedChangelog moves aside and rebuilds a local store whose changelog topic was
	// deleted and recreated (the name's topic ID changed). The default, false, stops Run with an
	// error that says so: the store's records are not the new topic's.
	RebuildRecreatedChangelog bool
	// SavepointRetention is the min.compaction.lag.ms of a table topic the job creates: how
	// long a savepoint of it stays usable. Zero is topology.DefaultSavepointRetention (24h).
	SavepointRetention time.Duration
	// RequireDurableTopics refuses to start (an error wrapping topology.ErrNotDurable) when the
	// table, output or dead-letter topic cannot keep an acknowledged write through the loss of
	// a broker: a replication factor or min.insync.replicas below 2. The default, false, logs a
	// warning instead.
	RequireDurableTopics bool
	// StateDir holds the local stores, one directory per table partition. Required; each
	// process needs its own. It is a cache of the changelog: losing it costs a restore, never
	// a score.
	StateDir string
	// Format reads inputs and scores and writes outputs; nil is codecs.JSON{} with no size
	// limit. codecs.JSONMerge, codecs.NewAvro (through a schema registry) and codecs.Typed are
	// the others.
	Format codecs.Format
	// Partitioner maps keys to partitions: Murmur2, FNV1a or CRC32; empty is Murmur2.
	Partitioner string
	// Guarantee is AtLeastOnce or ExactlyOnce; empty is AtLeastOnce.
	Guarantee Guarantee
	// CommitInterval is how often ExactlyOnce commits a transaction: outputs become visible
	// this much later. Zero is 100ms.
	CommitInterval time.Duration
	// ScoreHistory, when positive, makes the join as-of: the table keeps each key's scores of
	// the last ScoreHistory by record timestamp, and an input gets the score valid at its own
	// timestamp. Zero (the default) joins the latest score.
	ScoreHistory time.Duration
	// MaxScoreAhead bounds, under the as-of join, how far ahead of the clock a score may be
	// stamped: a later one goes to the DLQ as codecs.ReasonScoreFromFuture rather than move its
	// key's history window past the versions inputs still need. Zero is one hour.
	MaxScoreAhead time.Duration
	// MaxIdle is how long a partition holds an input back while the scores topic has no records
	// that could be earlier. Zero (the default) waits only for records already on the broker; a
	// negative value turns timestamp alignment off.
	MaxIdle time.Duration
	// StandbyReplicas is how many standby copies of each partition the group keeps, each on a
	// process other than the partition's owner and current from the changelog, so a crash
	// fails over without a restore. Zero (the default) keeps none: a process then stores only
	// its own partitions, and the warm-up copies of partitions it is to take over. Set the same
	// value on every process: the group's leader plans with its own.
	StandbyReplicas int
	// InstanceID makes the consumer-group member static (KIP-345): a process that restarts
	// with the same id within the session timeout keeps its partitions. Empty is dynamic.
	InstanceID string
	// SessionTimeout is how long the group waits for a process that stopped heartbeating
	// before it moves its partitions: the failover time after a crash. Zero is 6s.
	SessionTimeout time.Duration
	// ConnectTimeout bounds how long Run waits for the brokers at start. Zero is one minute.
	ConnectTimeout time.Duration
	// Logger receives the processor's logs; nil is slog.Default().
	Logger *slog.Logger
	// Goka, if set, is called with each goka processor before it runs: after a failure Run
	// builds a new one and calls Goka again. It is the one way into goka (for its web monitor,
	// say); the processor must not be run or stopped by the callee. Nil (the default) does
	// nothing.
	Goka func(*goka.Processor)
}

// ConfigError is a Config that cannot work: Field names the setting.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Validate reports the first setting that cannot work, as a *ConfigError.
func (c Config) Validate() error {
	_, err := c.engine()
	return err
}

// ErrStateDiskFull is Run's error when the filesystem of Config.StateDir has less free space
// than Config.StateMinFree, to test with errors.Is.
var ErrStateDiskFull = store.ErrDiskFull

// Errors of Lookup, to test with errors.Is.
var (
	// ErrNotLocal is a key whose partition another process owns; the error is a
	// *NotLocalError naming the partition.
	ErrNotLocal = errors.New("key's partition is not owned by this process")
	// ErrNotReady is a lookup before the partition's store is recovered and running here.
	ErrNotReady = errors.New("processor is not running its partitions yet")
)

// NotLocalError is the ErrNotLocal of a key: Partition is the key's partition.
type NotLocalError struct {
	Key       string
	Partition int32
}

func (e *NotLocalError) Error() string {
	return fmt.Sprintf("key %q: partition %d: %v", e.Key, e.Partition, ErrNotLocal)
}

// Is makes errors.Is(err, ErrNotLocal) hold.
func (e *NotLocalError) Is(target error) bool { return target == ErrNotLocal }

// Processor runs the job. Build it with New; Run it once.
type Processor struct {
	runner   *job.Runner
	stats    *job.Stats
	scheme   partition.Scheme
	attached atomic.Pointer[job.Attached]
}

// New checks cfg and returns a Processor; it does not connect yet. A wrong setting is a
// *ConfigError.
func New(cfg Config) (*Processor, error) {
	jc, err := cfg.engine()
	if err != nil {
		return nil, err
	}
	p := &Processor{stats: job.NewStats(), scheme: jc.Kafka.Partitioner}
	jc.Stats = p.stats
	jc.OnProcessor = func(a job.Attached) {
		p.attached.Store(&a)
		if cfg.Goka != nil {
			cfg.Goka(a.Processor)
		}
	}
	r, err := job.New(jc)
	if err != nil {
		return nil, &ConfigError{Field: "config", Err: err}
	}
	p.runner = r
	return p, nil
}

// engine turns the public settings into the engine's, with the defaults filled in.
func (c Config) engine() (job.Config, error) {
	kc := kafkaconf.Defaults()
	kc.Brokers = c.Cluster.Brokers
	if c.Cluster.ClientID != "" {
		kc.ClientID = c.Cluster.ClientID
	}
	kc.Security = kafkaconf.Security{TLSConfig: c.Cluster.TLS,
		SASLMechanism: c.Cluster.SASL.Mechanism, SASLUser: c.Cluster.SASL.User, SASLPassword: c.Cluster.SASL.Password}
	kc.InstanceID = c.InstanceID
	if c.SessionTimeout > 0 {
		kc.SessionTimeout = c.SessionTimeout
	}
	if err := c.Cluster.Validate(); err != nil {
		return job.Config{}, &ConfigError{Field: "Cluster", Err: err}
	}
	if c.Partitioner != "" {
		scheme, err := partition.Parse(c.Partitioner)
		if err != nil {
			return job.Config{}, &ConfigError{Field: "Partitioner", Err: err}
		}
		kc.Partitioner = scheme
	}
	if err := kc.Validate(); err != nil {
		return job.Config{}, &ConfigError{Field: "SessionTimeout", Err: err}
	}
	topics := c.Topics
	if topics == (topology.Topics{}) {
		topics = topology.DefaultTopics()
	}
	if err := topics.Validate(); err != nil {
		return job.Config{}, &ConfigError{Field: "Topics", Err: err}
	}
	if c.StateDir == "" {
		return job.Config{}, &ConfigError{Field: "StateDir", Err: errors.New("required")}
	}
	guarantee := job.AtLeastOnce
	if c.Guarantee != "" {
		g, err := job.ParseGuarantee(string(c.Guarantee))
		if err != nil {
			return job.Config{}, &ConfigError{Field: "Guarantee", Err: err}
		}
		guarantee = g
	}
	partitions, rf := c.Partitions, c.ReplicationFactor
	if partitions == 0 {
		partitions = 4
	}
	if rf == 0 {
		rf = -1
	}
	switch {
	case partitions < 0:
		return job.Config{}, &ConfigError{Field: "Partitions", Err: fmt.Errorf("must be positive, got %d", partitions)}
	case rf < -1:
		return job.Config{}, &ConfigError{Field: "ReplicationFactor", Err: fmt.Errorf("must be -1 or positive, got %d", rf)}
	case c.CommitInterval < 0:
		return job.Config{}, &ConfigError{Field: "CommitInterval", Err: fmt.Errorf("must not be negative, got %s", c.CommitInterval)}
	case c.ScoreHistory < 0:
		return job.Config{}, &ConfigError{Field: "ScoreHistory", Err: fmt.Errorf("must not be negative, got %s", c.ScoreHistory)}
	case c.MemoryLimit < 0:
		return job.Config{}, &ConfigError{Field: "MemoryLimit", Err: fmt.Errorf("must not be negative, got %d", c.MemoryLimit)}
	case c.SavepointRetention < 0:
		return job.Config{}, &ConfigError{Field: "SavepointRetention", Err: fmt.Errorf("must not be negative, got %s", c.SavepointRetention)}
	case c.MaxScoreAhead < 0:
		return job.Config{}, &ConfigError{Field: "MaxScoreAhead", Err: fmt.Errorf("must not be negative, got %s", c.MaxScoreAhead)}
	case c.StandbyReplicas < 0:
		return job.Config{}, &ConfigError{Field: "StandbyReplicas", Err: fmt.Errorf("must not be negative, got %d", c.StandbyReplicas)}
	case c.ConnectTimeout < 0:
		return job.Config{}, &ConfigError{Field: "ConnectTimeout", Err: fmt.Errorf("must not be negative, got %s", c.ConnectTimeout)}
	}
	interval := c.CommitInterval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	return job.Config{
		Kafka:  kc,
		Topics: topics,
		Create: c.CreateTopics,
		Spec: topology.Spec{Partitions: partitions, ReplicationFactor: rf, CreateStreams: c.CreateTopics,
			SavepointRetention: c.SavepointRetention, RequireDurable: c.RequireDurableTopics},
		StateDir:                  c.StateDir,
		Format:                    c.Format,
		CacheEntries:              store.DefaultCacheEntries,
		MaxIdle:                   c.MaxIdle,
		ScoreHistory:              c.ScoreHistory,
		MaxScoreAhead:             c.MaxScoreAhead,
		RebuildRecreatedChangelog: c.RebuildRecreatedChangelog,
		MemoryLimit:               c.MemoryLimit,
		StateMinFree:              c.StateMinFree,
		StandbyReplicas:           c.StandbyReplicas,
		Guarantee:                 guarantee,
		CommitInterval:            interval,
		Logger:                    c.Logger,
		ConnectTimeout:            c.ConnectTimeout,
	}, nil
}

// Run checks the topics (creating them as the Config says), then processes until ctx ends. A
// processor that fails at run time, such as on a broker that went away, is built again and run
// with backoff, keeping its local state. Run returns nil after ctx ends and the processor has
// flushed its writes and committed its offsets; it returns an error when the topics are wrong
// (wrapping topology.ErrMissingTopic, ErrNotCopartitioned or ErrBadTable), when the brokers
// cannot be reached within Config.ConnectTimeout at start, or when the local state cannot be
// recovered, or when the state directory's filesystem runs short (ErrStateDiskFull); with Config.RequireDurableTopics, also when they cannot keep an acknowledged write
// (topology.ErrNotDurable).
func (p *Processor) Run(ctx context.Context) error {
	return p.runner.Run(ctx)
}

// Lookup returns key's score as this process's store of the key's partition holds it; found is
// false for a key without a score. Under ExactlyOnce it answers committed scores only. A key
// whose partition this process does not own is a *NotLocalError (errors.Is ErrNotLocal); a
// lookup while the processor starts, rebalances or recovers the partition is ErrNotReady.
func (p *Processor) Lookup(ctx context.Context, key string) (score int64, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	a := p.attached.Load()
	if a == nil || !a.Processor.StateReader().IsState(goka.ProcStateRunning) {
		return 0, false, ErrNotReady
	}
	part := p.scheme.Partition([]byte(key), a.Layout.Partitions)
	if !p.stats.Assigned(part) {
		return 0, false, &NotLocalError{Key: key, Partition: part}
	}
	l, err := a.Lookup(part, key)
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("lookup %q in partition %d: %w", key, part, err)
	case !l.Open:
		return 0, false, ErrNotReady
	}
	return l.Score, l.Found, nil
}

// Stats is a snapshot of what a Processor did since New.
type Stats struct {
	// InputsConsumed counts input records read, good and bad.
	InputsConsumed int64
	// OutputsEmitted counts outputs written; OutputsNoScore those with codecs.NoScore.
	OutputsEmitted, OutputsNoScore int64
	// ScoresApplied counts score records applied to the table; TombstonesApplied deletions.
	ScoresApplied, TombstonesApplied int64
	// DeadLettered counts the records sent to the dead-letter topic, by reason.
	DeadLettered map[codecs.Reason]int64
	// RecordsRestored counts changelog records applied while restoring stores.
	RecordsRestored int64
	// Restarts counts processors built again after a failure; Rebalances the group's
	// assignments.
	Restarts, Rebalances int64
	// Partitions are the partitions the group assigned this process last, in order.
	Partitions []int32
}

// Stats returns a snapshot of the counters.
func (p *Processor) Stats() Stats {
	s := p.stats
	out := Stats{
		InputsConsumed: s.InputsConsumed.Load(), OutputsEmitted: s.OutputsEmitted.Load(), OutputsNoScore: s.OutputsNoScore.Load(),
		ScoresApplied: s.ScoresApplied.Load(), TombstonesApplied: s.TombstonesApplied.Load(),
		DeadLettered: s.DeadLettered(), RecordsRestored: s.RecordsRestored.Load(),
		Restarts: s.Restarts.Load(), Rebalances: s.Rebalances.Load(),
	}
	if a := p.attached.Load(); a != nil {
		for part := int32(0); part < a.Layout.Partitions; part++ {
			if s.Assigned(part) {
				out.Partitions = append(out.Partitions, part)
			}
		}
	}
	return out
}
