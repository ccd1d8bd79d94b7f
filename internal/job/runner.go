package job

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/assign"
	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/consumergroup"
	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/internal/members"
	"github.com/enricher/enricher/internal/membudget"
	"github.com/enricher/enricher/internal/producer"
	"github.com/enricher/enricher/internal/stagetime"
	"github.com/enricher/enricher/internal/store"
	"github.com/enricher/enricher/topology"
)

// Config configures a Runner.
type Config struct {
	Kafka  kafkaconf.Config
	Topics topology.Topics
	// Create makes the Runner create missing topics per Spec before it starts. Without it, the
	// job's own topics (table, DLQ) are still created; missing input, scores or output stop it.
	Create bool
	Spec   topology.Spec
	// StateDir holds the local LevelDB stores, one directory per table partition.
	StateDir string
	// Format reads inputs and scores and writes outputs; nil for codecs.JSON with no size limit.
	Format codecs.Format
	// DeadLetterMax caps the value a dead letter carries (0: a default that fits Kafka's 1 MB
	// message limit with the headers).
	DeadLetterMax int
	// CacheEntries is how many keys per partition the in-memory score cache in front of LevelDB
	// holds; 0 turns it off.
	CacheEntries int
	// MaxIdle is the timestamp alignment of each partition's input and scores records
	// (consumergroup.Config.MaxIdle): negative for none.
	MaxIdle time.Duration
	// ScoreHistory, when positive, makes the join as-of: each key keeps its scores of the last
	// ScoreHistory by record timestamp, and an input gets the one valid at its timestamp.
	ScoreHistory time.Duration
	// MemoryLimit, when positive, is the process's memory budget in bytes: the score caches and
	// every store's LevelDB memtable and block cache are sized from it (membudget.Split), the
	// cache at most CacheEntries per partition. The Runner sets no process-wide limit; the
	// command sets GOMEMLIMIT from the same figure.
	MemoryLimit int64
	// RebuildRecreatedChangelog moves aside and rebuilds a local store whose changelog topic
	// was deleted and recreated (another topic ID); false stops the job with the reason.
	RebuildRecreatedChangelog bool
	// MaxScoreAhead bounds, under the as-of join, how far ahead of the clock a score may be
	// stamped; a score stamped later goes to the DLQ. Zero is DefaultMaxScoreAhead.
	MaxScoreAhead time.Duration
	// Guarantee is AtLeastOnce (also the zero value) or ExactlyOnce.
	Guarantee Guarantee
	// CommitInterval is how often exactly-once commits a transaction.
	CommitInterval time.Duration
	// TransactionalID is the exactly-once producer's id; empty for one made by TransactionalID.
	TransactionalID string
	// TransactionTimeout is how long the broker keeps a transaction of a replica that died
	// open: the longest a partition that fails over waits for it to abort.
	TransactionTimeout time.Duration
	// StandbyReplicas is how many standby copies of each partition the group keeps, each on a
	// replica other than the partition's owner, current from the changelog: a failover to one
	// restores nothing. The group's leader decides with its own setting.
	StandbyReplicas int
	// MaxWarmups is how many warm-up copies the group restores at a time: a partition moves to
	// a replica only once that replica's copy is within AcceptableRecoveryLag; meanwhile its
	// owner keeps processing it. 0 is DefaultMaxWarmups.
	MaxWarmups int
	// AcceptableRecoveryLag is how many changelog records a replica's copy of a partition may
	// trail by and still take the partition over. 0 is DefaultAcceptableRecoveryLag.
	AcceptableRecoveryLag int64
	// StateCleanupDelay is how long a local store that is neither owned, nor a standby or
	// warm-up copy, stays on disk before it is deleted. 0 is DefaultStateCleanupDelay.
	StateCleanupDelay time.Duration
	// StateMinFree is the free space the state directory's filesystem must keep: below it the
	// job does not start, and a running job stops as on a signal, with store.ErrDiskFull. 0 is
	// store.DefaultMinFree; negative turns the check off.
	StateMinFree int64
	Logger       *slog.Logger
	Stats        *Stats
	// ConnectTimeout bounds how long start-up waits for the brokers before it gives up.
	ConnectTimeout time.Duration
	// MaxBackoff caps the wait between restarts of a processor that failed.
	MaxBackoff time.Duration
	// Advert is sent in the replica's group membership, where the other replicas read it
	// (where this replica's web server answers).
	Advert members.Advert
	// OnProcessor, if set, is called with each processor before it runs (the web server
	// attaches to it); after a restart it is called again with the new one.
	OnProcessor func(Attached)
	// Options are extra goka options, applied last.
	Options []goka.ProcessorOption
}

// Validate reports the first setting that is wrong.
func (c *Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	if err := c.Topics.Validate(); err != nil {
		return err
	}
	if c.StateDir == "" {
		return errors.New("state-dir: empty")
	}
	if c.MemoryLimit < 0 {
		return fmt.Errorf("memory-limit: must not be negative, got %d", c.MemoryLimit)
	}
	if c.CacheEntries < 0 {
		return fmt.Errorf("cache-entries: must not be negative, got %d", c.CacheEntries)
	}
	if c.Guarantee != "" {
		if _, err := ParseGuarantee(string(c.Guarantee)); err != nil {
			return fmt.Errorf("guarantee: %w", err)
		}
	}
	if c.CommitInterval < 0 {
		return fmt.Errorf("commit-interval: must not be negative, got %s", c.CommitInterval)
	}
	if c.Create && c.Spec.Partitions <= 0 {
		return fmt.Errorf("partitions: must be positive, got %d", c.Spec.Partitions)
	}
	return nil
}

// The defaults of the assignor's settings, Kafka Streams' (KIP-441).
const (
	DefaultMaxWarmups            = 2
	DefaultAcceptableRecoveryLag = 10_000
	// DefaultStateCleanupDelay is Kafka Streams' state.cleanup.delay.ms.
	DefaultStateCleanupDelay = 10 * time.Minute
)

// Runner keeps one goka processor of the job running.
type Runner struct {
	cfg    Config
	log    *slog.Logger
	stats  *Stats
	enrich *Enricher
	sink   *currentProducer
	caches *store.Caches
	// commit is the exactly-once committer; nil under at-least-once.
	commit *committer
	// member is the replica's side of the assignor, and rejoin its request for a rebalance;
	// both are made by Run.
	member *member
	rejoin *rejoiner
	// sharedBounds reads the changelog's bounds for the stores, goka's recovery and the
	// assignor, one request for every partition.
	sharedBounds *sharedBounds
}

// New returns a Runner for cfg.
func New(cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stats == nil {
		cfg.Stats = NewStats()
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = time.Minute
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	sink, caches := &currentProducer{}, &store.Caches{}
	if cfg.Format == nil {
		cfg.Format = codecs.JSON{}
	}
	cfg.Stats.ReportRegistry(cfg.Format)
	enrich := NewEnricher(cfg.Topics, cfg.Format, cfg.DeadLetterMax, cfg.Stats, sink, caches, cfg.Logger)
	cfg.Stats.Stages = stagetime.New(cfg.Topics.Input, stagetime.DefaultEvery)
	enrich.stages = cfg.Stats.Stages
	if cfg.MaxScoreAhead <= 0 {
		cfg.MaxScoreAhead = DefaultMaxScoreAhead
	}
	if cfg.ScoreHistory > 0 {
		enrich.asOf(cfg.ScoreHistory, cfg.MaxScoreAhead)
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = DefaultTransactionTimeout
	}
	if cfg.Guarantee == "" {
		cfg.Guarantee = AtLeastOnce
	}
	if cfg.MaxWarmups <= 0 {
		cfg.MaxWarmups = DefaultMaxWarmups
	}
	if cfg.AcceptableRecoveryLag <= 0 {
		cfg.AcceptableRecoveryLag = DefaultAcceptableRecoveryLag
	}
	if cfg.StateCleanupDelay <= 0 {
		cfg.StateCleanupDelay = DefaultStateCleanupDelay
	}
	if cfg.StateMinFree == 0 {
		cfg.StateMinFree = store.DefaultMinFree
	}
	r := &Runner{cfg: cfg, log: cfg.Logger, stats: cfg.Stats, enrich: enrich, sink: sink, caches: caches}
	if cfg.Guarantee == ExactlyOnce {
		r.commit = &committer{stores: store.NewHeld()}
	}
	return r, nil
}

// DefaultTransactionTimeout is Config.TransactionTimeout's default, Kafka Streams' under
// exactly-once.
const DefaultTransactionTimeout = 10 * time.Second

// Stats returns the runner's counters.
func (r *Runner) Stats() *Stats { return r.stats }

// Run checks the topology, then runs the processor until ctx is cancelled. A processor that
// fails is rebuilt and run again with backoff, keeping its local state. Run returns nil after a
// clean stop, and an error when the topology is wrong, the brokers cannot be reached at start,
// or the state directory's filesystem runs short of Config.StateMinFree (store.ErrDiskFull).
func (r *Runner) Run(parent context.Context) error {
	if err := os.MkdirAll(r.cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("state-dir: %w", err)
	}
	if r.cfg.StateMinFree <= 0 {
		return r.run(parent)
	}
	r.stats.MinFreeBytes.Store(r.cfg.StateMinFree)
	if err := r.stats.CheckSpace(r.cfg.StateDir, r.cfg.StateMinFree); err != nil {
		return err
	}
	// ctx also ends when the state directory's filesystem runs short: the processor then stops
	// as on a signal, flushing and committing what it did, and Run returns the cause.
	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	short := make(chan struct{})
	go r.stats.WatchSpace(ctx, r.cfg.StateDir, r.cfg.StateMinFree, time.Second, func(err error) {
		r.log.Error("stopping: the state directory's filesystem is nearly full", "error", err.Error())
		stop(err)
		close(short)
	})
	done := make(chan error, 1)
	go func() { done <- r.run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-short:
	}
	// A disk that filled up faster than the check saw it can hold a store's memtable flush,
	// and the processor's stop behind it, for good: the stop is bounded, and what it did not
	// commit is done again after the restart.
	select {
	case err := <-done:
		return errors.Join(context.Cause(ctx), err)
	case <-time.After(diskFullStopTimeout):
		return fmt.Errorf("%w; the processor did not stop within %s, held by a store that cannot write", context.Cause(ctx), diskFullStopTimeout)
	}
}

// diskFullStopTimeout bounds the stop of a processor whose state directory ran short.
const diskFullStopTimeout = 30 * time.Second

func (r *Runner) run(ctx context.Context) error {
	adm, err := r.cfg.Kafka.Admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	cluster, err := r.cfg.Kafka.Cluster()
	if err != nil {
		return err
	}

	layout, err := r.waitForTopology(ctx, cluster, time.Now().Add(r.cfg.ConnectTimeout))
	if err != nil || ctx.Err() != nil {
		return err
	}
	for _, weak := range layout.Weak {
		r.log.Warn("a topic cannot keep an acknowledged write through the loss of a broker (--require-durable-topics refuses it)", "why", weak)
	}
	if r.commit != nil {
		if err := r.checkTransactions(ctx); err != nil {
			return err
		}
	}
	r.log.Info("starting", "group", r.cfg.Topics.Group, "input", r.cfg.Topics.Input, "scores", r.cfg.Topics.Scores,
		"output", r.cfg.Topics.Output, "table", r.cfg.Topics.Table(), "dlq", r.cfg.Topics.DLQ(),
		"partitions", layout.Partitions, "state_dir", r.cfg.StateDir, "partitioner", string(r.cfg.Kafka.Partitioner),
		"standby_replicas", r.cfg.StandbyReplicas, "max_warmups", r.cfg.MaxWarmups, "acceptable_recovery_lag", r.cfg.AcceptableRecoveryLag,
		"score_history", r.cfg.ScoreHistory.String(), "max_idle", r.cfg.MaxIdle.String(),
		"guarantee", string(r.cfg.Guarantee), "transactional_id", r.cfg.TransactionalID)

	bounds := &sharedBounds{adm: adm}
	r.sharedBounds = bounds
	cacheEntries, dbOptions := r.cfg.CacheEntries, (*opt.Options)(nil)
	if r.cfg.MemoryLimit > 0 {
		// A replica holds at most every partition (owned, standby and warm-up copies together).
		plan, err := membudget.Split(r.cfg.MemoryLimit, int(layout.Partitions), r.cfg.CacheEntries)
		if err != nil {
			return fmt.Errorf("memory-limit: %w", err)
		}
		cacheEntries = plan.CacheEntries
		dbOptions = &opt.Options{WriteBuffer: plan.WriteBuffer, BlockCacheCapacity: plan.BlockCache}
		r.log.Info("memory budget", "limit", membudget.Format(r.cfg.MemoryLimit), "stores", layout.Partitions,
			"cache_entries_per_partition", plan.CacheEntries, "leveldb_write_buffer", membudget.Format(int64(plan.WriteBuffer)),
			"leveldb_block_cache", membudget.Format(int64(plan.BlockCache)))
	}
	sc := store.Config{DB: dbOptions, Dir: r.cfg.StateDir, Offsets: changelogOffsets(bounds), TopicID: bounds.topicID,
		RebuildRecreated: r.cfg.RebuildRecreatedChangelog, Read: r.partitionReader(), Logger: r.log,
		Stats: &r.stats.Stats, CacheEntries: cacheEntries, History: r.cfg.ScoreHistory > 0, Caches: r.caches, KeepFor: min(keptStoreTTL, r.cfg.StateCleanupDelay)}
	if r.commit != nil {
		sc.Held = r.commit.stores
	}
	guard, err := store.NewGuard(ctx, sc)
	if err != nil {
		return err
	}
	process, err := ProcessID(r.cfg.StateDir)
	if err != nil {
		return err
	}
	r.rejoin = newRejoiner(2 * time.Second)
	replicas := guard.Replicas(store.ReplicaConfig{Topic: r.cfg.Topics.Table(), Follow: r.partitionFollower(),
		AcceptableLag: r.cfg.AcceptableRecoveryLag, CaughtUp: r.rejoin.caughtUp})
	defer func() {
		if err := replicas.Close(); err != nil {
			r.log.Warn("close the standby and warm-up copies", "error", err.Error())
		}
	}()
	r.member = &member{advert: r.cfg.Advert, process: process, table: r.cfg.Topics.Table(), guard: guard,
		replicas: replicas, log: r.log.With("component", "assignor")}
	go guard.Cleanup(ctx, r.cfg.Topics.Table(), r.cfg.StateCleanupDelay, min(max(r.cfg.StateCleanupDelay/4, time.Second), time.Minute))
	backoff := time.Second
	for {
		started := time.Now()
		err := r.runOnce(ctx, layout, guard)
		if fatal := guard.Fatal(); fatal != nil {
			return fatal
		}
		if r.commit != nil {
			if fatal := r.commit.fatalErr(); fatal != nil {
				return fmt.Errorf("exactly-once: another process runs with this replica's transactional id "+
					"(the same --instance-id, or a copy of the state directory): %w", fatal)
			}
		}
		if perm := r.sink.permanent(); perm != nil {
			return fmt.Errorf("a write was refused in a way no retry mends, so a restart would fail on the same record again: %w", perm)
		}
		if ctx.Err() != nil {
			r.log.Info("stopped", "group", r.cfg.Topics.Group)
			return nil
		}
		if time.Since(started) > 2*r.cfg.MaxBackoff {
			backoff = time.Second
		}
		r.stats.Restarts.Add(1)
		r.log.Error("processor failed: restarting it with its local state", "error", errString(err), "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.cfg.MaxBackoff)
		// Once running, a broker that went away is waited for as long as it takes.
		if layout, err = r.waitForTopology(ctx, cluster, time.Time{}); err != nil || ctx.Err() != nil {
			return err
		}
	}
}

func (r *Runner) runOnce(ctx context.Context, layout topology.Layout, guard *store.Guard) error {
	if layout.OutputMaxMessageBytes > 0 {
		r.enrich.limitOutputs(min(layout.OutputMaxMessageBytes, producer.BatchMaxBytes))
	}
	opts, err := r.options(layout, guard)
	if err != nil {
		return err
	}
	graph := Graph(r.cfg.Topics, r.enrich.Callbacks())
	p, err := goka.NewProcessor(r.cfg.Kafka.Brokers, graph, opts...)
	if err != nil {
		return fmt.Errorf("build processor: %w", err)
	}
	if r.cfg.OnProcessor != nil {
		r.cfg.OnProcessor(Attached{Processor: p, Layout: layout, Lookup: r.lookup, Copies: r.member.replicas.Copies,
			DiskBytes: func() map[int32]int64 { return guard.DiskBytes(r.cfg.Topics.Table()) }})
	}
	err = p.Run(ctx)
	// goka has closed every store; the ones kept for a next session are closed for real.
	if cerr := guard.CloseKept(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// lookup reads key's score in this replica's store of partition: the store goka runs, else a
// standby or warm-up copy.
func (r *Runner) lookup(partition int32, key string) (store.Lookup, error) {
	l, err := r.caches.Lookup(partition, key)
	if err != nil || l.Open {
		return l, err
	}
	return r.member.replicas.Lookup(partition, key)
}

// Attached is what OnProcessor is handed: a processor about to run, the layout of its topics,
// and a lookup of scores in this replica's stores, standby and warm-up copies included.
type Attached struct {
	Processor *goka.Processor
	Layout    topology.Layout
	Lookup    func(partition int32, key string) (store.Lookup, error)
	// Copies lists the standby and warm-up copies this replica keeps, by partition.
	Copies func() map[int32]store.Copy
	// DiskBytes reads the bytes on disk of this replica's stores, by partition.
	DiskBytes func() map[int32]int64
}

// keptStoreTTL is how long a store whose partition went to another replica stays open, in
// case a rebalance soon after gives it back.
const keptStoreTTL = time.Minute

func (r *Runner) options(layout topology.Layout, guard *store.Guard) ([]goka.ProcessorOption, error) {
	// goka's builders write into the config they are given: each gets its own.
	var configs [3]*sarama.Config
	for i := range configs {
		c, err := r.cfg.Kafka.Sarama()
		if err != nil {
			return nil, err
		}
		configs[i] = c
	}
	cg := consumergroup.Config{MaxIdle: r.cfg.MaxIdle, First: r.cfg.Topics.Scores,
		Stats: r.stats.Alignment, Logger: r.log.With("component", "consumergroup"), Rejoin: r.rejoin.ch, Stages: r.stats.Stages}
	if r.commit != nil {
		cg.Commit, cg.CommitInterval = r.commit, r.cfg.CommitInterval
		// Inputs, scores and the changelog are read as committed: a transaction's records are
		// seen once it committed, never if it aborted. sarama's offset fetch then waits for
		// offsets a transaction is still committing (KIP-447's require_stable).
		configs[1].Consumer.IsolationLevel = sarama.ReadCommitted
		configs[2].Consumer.IsolationLevel = sarama.ReadCommitted
	}
	// The state-aware assignor first; goka's co-partitioning strategy while a replica of an
	// older version, which knows only that one, is in the group. goka's config sets the
	// deprecated Rebalance.Strategy, which would win over the list.
	strategy := assign.New(assign.Config{
		Settings: assign.Settings{StandbyReplicas: r.cfg.StandbyReplicas, MaxWarmups: r.cfg.MaxWarmups,
			AcceptableLag: r.cfg.AcceptableRecoveryLag},
		Local: r.member, Bounds: changelogBounds(r.sharedBounds, r.cfg.Topics.Table()), Logger: r.log.With("component", "assignor"),
	})
	configs[1].Consumer.Group.Rebalance.Strategy = nil
	configs[1].Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy, goka.CopartitioningStrategy}
	configs[1].Consumer.Group.Member.UserData = r.cfg.Advert.Encode()
	group, err := consumergroup.Builder(configs[1], cg)
	if err != nil {
		return nil, err
	}
	tm := goka.NewTopicManagerConfig()
	// The topology package created and checked every topic; goka must neither create one with
	// its own defaults (replication 2) nor second-guess the replication we were given.
	tm.NoCreate = true
	tm.MismatchBehavior = goka.TMConfigMismatchBehaviorIgnore

	opts := []goka.ProcessorOption{
		goka.WithClientID(r.cfg.Kafka.ClientID),
		goka.WithLogger(gokaLogger{r.log.With("component", "goka")}),
		goka.WithStorageBuilder(guard.Builder()),
		goka.WithTopicManagerBuilder(r.tableOffsetsFrom(goka.TopicManagerBuilderWithConfig(configs[0], tm))),
		goka.WithConsumerGroupBuilder(group),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(configs[2])),
		goka.WithProducerBuilder(r.buildProducer),
		goka.WithHasher(r.cfg.Kafka.Partitioner.GokaHasher(layout.Partitions)),
		goka.WithNilHandling(goka.NilProcess),
		goka.WithRebalanceCallback(r.onRebalance),
	}
	return append(opts, r.cfg.Options...), nil
}

// buildProducer is goka's producer builder: a franz-go producer with kafkaconf's settings and
// goka's client id (goka's hasher goes unused: the configured scheme partitions the records). It
// also becomes the Enricher's sink for the processor being built.
func (r *Runner) buildProducer(_ []string, clientID string, _ func() hash.Hash32) (goka.Producer, error) {
	kc := r.cfg.Kafka
	kc.ClientID = clientID
	kc.Logger = r.log.With("component", "producer")
	if r.commit != nil {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ConnectTimeout)
		defer cancel()
		p, err := producer.NewTransactional(ctx, kc, r.cfg.TransactionalID, r.cfg.TransactionTimeout)
		if err != nil {
			return nil, err
		}
		r.commit.p.Store(p)
		r.sink.set(p)
		return p, nil
	}
	p, err := producer.New(kc)
	if err != nil {
		return nil, err
	}
	r.sink.set(p)
	return p, nil
}

// checkTransactions starts the exactly-once producer once before the processor, so a cluster
// that cannot run transactions fails the start with its reason.
func (r *Runner) checkTransactions(ctx context.Context) error {
	if r.cfg.TransactionalID == "" {
		id, err := TransactionalID(r.cfg.StateDir, r.cfg.Topics.Group, r.cfg.Kafka.InstanceID)
		if err != nil {
			return err
		}
		r.cfg.TransactionalID = id
	}
	// A fresh cluster creates its transaction state topic on the first transactional id, and
	// answers COORDINATOR_NOT_AVAILABLE meanwhile; a cluster that cannot create it never stops.
	deadline := time.Now().Add(min(r.cfg.ConnectTimeout, 30*time.Second))
	for {
		cctx, cancel := context.WithDeadline(ctx, deadline)
		err := producer.InitCheck(cctx, r.cfg.Kafka, r.cfg.TransactionalID, r.cfg.TransactionTimeout)
		cancel()
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("exactly-once: %w", err)
		}
		r.log.Warn("cannot start a transaction yet: retrying", "transactional_id", r.cfg.TransactionalID, "error", err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// currentProducer is a Runner's Sink: the producer goka built for the processor running now.
type currentProducer struct {
	p atomic.Pointer[Sink]
}

func (c *currentProducer) set(s Sink) { c.p.Store(&s) }

// permanent returns the current producer's write failure that no retry mends, if any.
func (c *currentProducer) permanent() error {
	if p := c.p.Load(); p != nil {
		if pp, ok := (*p).(interface{ Permanent() error }); ok {
			return pp.Permanent()
		}
	}
	return nil
}

func (c *currentProducer) Produce(r *kgo.Record, done func(error)) {
	if p := c.p.Load(); p != nil {
		(*p).Produce(r, done)
		return
	}
	done(errors.New("no producer: the processor is not running"))
}

func (r *Runner) onRebalance(a goka.Assignment) {
	r.stats.Rebalances.Add(1)
	parts := make([]int, 0, len(a))
	for p := range a {
		parts = append(parts, int(p))
	}
	sort.Ints(parts)
	r.stats.assign(a)
	r.log.Info("partitions assigned", "group", r.cfg.Topics.Group, "partitions", parts)
}

// waitForTopology creates (if asked) and checks the topics, retrying while the brokers cannot be
// reached, until deadline (a zero deadline: until ctx ends). A wrong topology is returned at once.
func (r *Runner) waitForTopology(ctx context.Context, cluster topology.Cluster, deadline time.Time) (topology.Layout, error) {
	wait := 500 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		var layout topology.Layout
		var err error
		if r.cfg.Create {
			layout, err = topology.Ensure(cctx, cluster, r.cfg.Topics, r.cfg.Spec)
		} else {
			spec := r.cfg.Spec
			spec.CreateStreams = false
			layout, err = topology.Ensure(cctx, cluster, r.cfg.Topics, spec)
		}
		cancel()
		switch {
		case err == nil, ctx.Err() != nil:
			return layout, nil
		case topology.Permanent(err):
			return topology.Layout{}, err
		case kafkaconf.AccessDenied(err) != nil:
			return topology.Layout{}, kafkaconf.AccessDenied(err)
		case !deadline.IsZero() && time.Now().After(deadline):
			return topology.Layout{}, fmt.Errorf("brokers %v not reachable for %s: %w", r.cfg.Kafka.Brokers, r.cfg.ConnectTimeout, err)
		}
		r.log.Warn("cannot check topics yet: retrying", "brokers", r.cfg.Kafka.Brokers, "error", err.Error(), "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return topology.Layout{}, nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// partitionReader reads changelog partitions with franz-go for the fast restore.
func (r *Runner) partitionReader() store.PartitionReader { return changelog.Reader(r.cfg.Kafka) }

// partitionFollower follows changelog partitions with franz-go for the standby and warm-up
// copies.
func (r *Runner) partitionFollower() store.PartitionFollower {
	return func(ctx context.Context, topic string, partition int32, from int64, fn func([]*kgo.Record, int64, int64) error) error {
		return changelog.FollowPartition(ctx, r.cfg.Kafka, topic, partition, from, fn)
	}
}

// tableOffsets is goka's topic manager with the table's offsets read from sharedBounds: goka's
// recovery of each partition asks for its table's oldest and newest offsets one request at a
// time, and a rebalance that hands a replica six partitions queued twelve of them on one
// connection (0.2-0.35 s before the last partition processed a record). Every other call goes
// to goka's own.
type tableOffsets struct {
	goka.TopicManager
	table  string
	bounds *sharedBounds
}

// tableOffsetsFrom wraps the topic managers build makes.
func (r *Runner) tableOffsetsFrom(build goka.TopicManagerBuilder) goka.TopicManagerBuilder {
	return func(brokers []string) (goka.TopicManager, error) {
		tm, err := build(brokers)
		if err != nil {
			return nil, err
		}
		return &tableOffsets{TopicManager: tm, table: r.cfg.Topics.Table(), bounds: r.sharedBounds}, nil
	}
}

// GetOffset answers the table's oldest and newest offsets from the shared read; goka's own
// topic manager answers the rest, and the table's when that read fails.
func (t *tableOffsets) GetOffset(topic string, partition int32, at int64) (int64, error) {
	if topic == t.table && (at == sarama.OffsetOldest || at == sarama.OffsetNewest) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		all, err := t.bounds.get(ctx, topic)
		cancel()
		if b, ok := all[partition]; err == nil && ok {
			if at == sarama.OffsetOldest {
				return b.Start, nil
			}
			return b.End, nil
		}
	}
	return t.TopicManager.GetOffset(topic, partition, at)
}

// changelogOffsets reads a partition's log start offset and high-water mark, from bounds.
func changelogOffsets(bounds *sharedBounds) store.OffsetRange {
	return func(ctx context.Context, topic string, partition int32) (int64, int64, error) {
		all, err := bounds.get(ctx, topic)
		if err != nil {
			return 0, 0, err
		}
		b, ok := all[partition]
		if !ok {
			return 0, 0, fmt.Errorf("no offsets for %s/%d", topic, partition)
		}
		return b.Start, b.End, nil
	}
}

// sharedBounds reads the bounds of every partition of a changelog in one request, whose answer
// the calls that come while it runs share: a rebalance opens every partition's store at once,
// and each store is checked against its changelog's bounds. One request per partition queued
// up on the broker's connection and made the last partition of twelve wait 0.4 s. A shared
// answer is no older than the request a call would have made itself, less one round trip.
type sharedBounds struct {
	adm *kadm.Client

	mu       sync.Mutex
	inflight map[string]*boundsRead
}

// boundsRead is one request for a topic's bounds, and its answer once done is closed.
type boundsRead struct {
	done   chan struct{}
	bounds map[int32]changelog.Bounds
	id     string // the topic's ID, "" when the cluster has none
	err    error
}

func (s *sharedBounds) get(ctx context.Context, topic string) (map[int32]changelog.Bounds, error) {
	read, err := s.read(ctx, topic)
	if err != nil {
		return nil, err
	}
	return read.bounds, read.err
}

// topicID returns topic's ID, read with its bounds.
func (s *sharedBounds) topicID(ctx context.Context, topic string) (string, error) {
	read, err := s.read(ctx, topic)
	if err != nil {
		return "", err
	}
	return read.id, read.err
}

// read returns the answer of the read of topic in flight, or of one it starts.
func (s *sharedBounds) read(ctx context.Context, topic string) (*boundsRead, error) {
	s.mu.Lock()
	if s.inflight == nil {
		s.inflight = map[string]*boundsRead{}
	}
	read, shared := s.inflight[topic]
	if !shared {
		read = &boundsRead{done: make(chan struct{})}
		s.inflight[topic] = read
	}
	s.mu.Unlock()
	if shared {
		select {
		case <-read.done:
			return read, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	read.bounds, read.err = changelog.Offsets(ctx, s.adm, topic)
	if read.err == nil {
		read.id, read.err = changelog.TopicID(ctx, s.adm, topic)
	}
	s.mu.Lock()
	delete(s.inflight, topic)
	s.mu.Unlock()
	close(read.done)
	return read, nil
}

func errString(err error) string {
	if err == nil {
		return "processor stopped without an error"
	}
	return clip(err.Error())
}
