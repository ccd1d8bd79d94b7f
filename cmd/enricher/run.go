package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/consumergroup"
	"github.com/enricher/enricher/internal/embedded"
	"github.com/enricher/enricher/internal/job"
	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/internal/members"
	"github.com/enricher/enricher/internal/membudget"
	"github.com/enricher/enricher/internal/store"
	"github.com/enricher/enricher/internal/web"
	"github.com/enricher/enricher/topology"
)

// maxMessageLimit leaves room for an output's JSON around the message and for dead-letter
// headers within the producer's 1,000,000-byte limit.
const maxMessageLimit = 990_000

// processorFlags are the flags of `run` and `dev`.
type processorFlags struct {
	jobFlags
	logs            logFlags
	stateDir        string
	create          bool
	partitions      int
	replication     int
	standby         bool
	standbyReplicas int
	maxWarmups      int
	acceptableLag   int64
	cleanupDelay    time.Duration
	requireDurable  bool
	recoverAhead    bool
	maxIdle         maxIdle
	join            string
	scoreHistory    time.Duration
	maxScoreAhead   time.Duration
	spRetention     time.Duration
	recreated       string
	memoryLimit     string
	stateMinFree    string
	guarantee       string
	commitInterval  time.Duration
	txnTimeout      time.Duration
	maxMessage      int
	outputShape     string
	format          string
	inputFormat     string // "": format
	scoresFormat    string // "": format
	outputFormat    string // "": the input's format, the only one accepted
	registry        codecs.Registry
	registryCA      string
	outputScore     string
	keyField        string
	scoreField      string
	connectTimeout  time.Duration
	shutdownTimeout time.Duration
	webAddr         string
	advertiseAddr   string
	webToken        string
	pprof           bool
	cacheEntries    int
}

func (p *processorFlags) register(fs *flag.FlagSet, withBrokers bool) {
	p.kafka.register(fs, withBrokers)
	p.kafka.registerMember(fs)
	p.topics.register(fs)
	p.logs.register(fs)
	fs.StringVar(&p.stateDir, "state-dir", "./state", "directory of the local LevelDB stores (a cache: the changelog topic is the truth)")
	fs.BoolVar(&p.create, "create-topics", false, "create missing input, scores and output topics (the table and DLQ topics are always created)")
	fs.DurationVar(&p.spRetention, "savepoint-retention", topology.DefaultSavepointRetention, savepointRetentionUsage)
	fs.StringVar(&p.memoryLimit, "memory-limit", "", "the process's memory budget, for example 1GiB: sets GOMEMLIMIT (unless set) and sizes the score caches and each store's LevelDB buffers from it (default: no budget)")
	fs.StringVar(&p.stateMinFree, "state-min-free", "64MiB", "free space the --state-dir filesystem must keep for the stores, for example 1GiB: below it the replica does not start, and a running one stops (flushing and committing) and exits 1; 0 turns the check off")
	fs.StringVar(&p.recreated, "changelog-recreated", "stop", "a local store whose changelog topic was deleted and recreated (another topic ID): stop (exit 1 with the reason) or rebuild (move it aside and restore from the new topic)")
	fs.IntVar(&p.partitions, "partitions", 4, "partitions of topics created")
	fs.IntVar(&p.replication, "replication-factor", -1, "replication factor of topics created (-1: the broker's default)")
	fs.IntVar(&p.cacheEntries, "cache-entries", store.DefaultCacheEntries, "keys per partition whose scores are cached in memory in front of LevelDB (0: no cache)")
	fs.IntVar(&p.standbyReplicas, "standby-replicas", 0, "standby copies of each partition the group keeps on replicas other than its owner, current from the changelog: a failover to one restores nothing (the group's leader decides with its own setting)")
	fs.BoolVar(&p.standby, "standby", false, "the same as --standby-replicas 1")
	fs.IntVar(&p.maxWarmups, "max-warmups", job.DefaultMaxWarmups, "warm-up copies the group restores at a time: a partition moves to a replica once that replica's copy is within --acceptable-recovery-lag, its owner processing it meanwhile")
	fs.Int64Var(&p.acceptableLag, "acceptable-recovery-lag", job.DefaultAcceptableRecoveryLag, "changelog records a replica's copy of a partition may trail by and still take the partition over")
	fs.BoolVar(&p.requireDurable, "require-durable-topics", false, "refuse to start when the table, output or DLQ topic cannot keep an acknowledged write through the loss of a broker (replication or min.insync.replicas below 2); without it, a warning")
	fs.DurationVar(&p.cleanupDelay, "state-cleanup-delay", job.DefaultStateCleanupDelay, "how long a local store this replica neither owns nor keeps a copy of stays on disk before it is deleted")
	fs.BoolVar(&p.recoverAhead, "recover-ahead", true, "accepted for compatibility and ignored: a joining replica warms up the partitions it is to take (--max-warmups) and restores nothing else")
	fs.Var(&p.maxIdle, "max-idle", "timestamp alignment of input and scores per partition: 0 waits only for records already on the broker, a duration also waits that long for a topic with none, -1 turns alignment off")
	fs.StringVar(&p.join, "join", "latest", "latest: an input gets its key's latest score; as-of: the score whose timestamp is the latest at or before the input's, from the last --score-history")
	fs.DurationVar(&p.scoreHistory, "score-history", time.Hour, "with --join as-of: how much of each key's score history, by record timestamp, the table keeps")
	fs.DurationVar(&p.maxScoreAhead, "max-score-ahead", job.DefaultMaxScoreAhead, "with --join as-of: a score stamped further ahead of the clock goes to the DLQ as score_from_future")
	fs.StringVar(&p.guarantee, "guarantee", string(job.AtLeastOnce), "at-least-once: a crash can repeat outputs; exactly-once: outputs, dead letters, table writes and offsets commit in one Kafka transaction per --commit-interval (read the outputs with isolation.level=read_committed)")
	fs.DurationVar(&p.commitInterval, "commit-interval", 100*time.Millisecond, "with --guarantee exactly-once: how often a transaction commits; outputs become visible this much later")
	fs.DurationVar(&p.txnTimeout, "transaction-timeout", job.DefaultTransactionTimeout, "with --guarantee exactly-once: how long the broker keeps a dead replica's transaction open, the longest its partitions wait for it when they fail over")
	fs.IntVar(&p.maxMessage, "max-message-bytes", 900*1024, "inputs and scores larger than this go to the dead-letter topic")
	fs.StringVar(&p.format, "format", "json", "the records' format: json; avro (Apache Avro), protobuf (Protocol Buffers) or json-schema (JSON validated by a JSON Schema), each in the Confluent wire format with --schema-registry: such an output is its input's record with --output-score-field added")
	fs.StringVar(&p.inputFormat, "input-format", "", "the inputs' format, where it is not --format's (the outputs are in the same format)")
	fs.StringVar(&p.scoresFormat, "scores-format", "", "the score records' format, where it is not --format's; json with a registry input format reads any JSON object with an integer --score-field")
	fs.StringVar(&p.outputFormat, "output-format", "", "the outputs' format: the input's, the only one accepted, as an output is its input's record with the score")
	fs.StringVar(&p.registry.URL, "schema-registry", "", "with a registry --format: the schema registry's URL (Confluent's REST API; Apicurio's is under /apis/ccompat/v7)")
	fs.StringVar(&p.registry.Username, "schema-registry-user", "", "with a registry --format: basic authentication user for the schema registry")
	fs.StringVar(&p.registry.Password, "schema-registry-password", "", "with a registry --format: basic authentication password for the schema registry")
	fs.StringVar(&p.registryCA, "schema-registry-ca", "", "with a registry --format: PEM file of the CA an https schema registry's certificate chains to (default: the system's)")
	fs.StringVar(&p.outputScore, "output-score-field", "score", "with a registry --format: the field (an Avro long, a Protobuf int64, a JSON Schema integer), -1 while the key has no score, an output adds to its input's record")
	fs.StringVar(&p.outputShape, "output-shape", "seed", "seed: inputs {key, message}, scores {key, score}, outputs {key, message, score}; merge: an input is any JSON object and its output is that object with --score-field added, every field kept")
	fs.StringVar(&p.keyField, "key-field", "key", "with --output-shape merge: the field that, when a value has it, must hold the record key")
	fs.StringVar(&p.scoreField, "score-field", "score", "with --output-shape merge: the integer field of score records, and the field added to outputs")
	fs.DurationVar(&p.connectTimeout, "connect-timeout", time.Minute, "how long start-up waits for the brokers")
	fs.DurationVar(&p.shutdownTimeout, "shutdown-timeout", time.Minute, "how long a stop may take to flush and commit (under exactly-once it must exceed half of --rebalance-timeout, the bound of the last commit)")
	fs.StringVar(&p.webAddr, "web-addr", "127.0.0.1:9095", "address of the monitor, group and query pages, /scores/{key}, /healthz, /readyz and /metrics (empty: no web server)")
	fs.StringVar(&p.advertiseAddr, "advertise-addr", "", "host:port the other replicas reach this replica's web server on, to route key lookups and draw the group page (empty: the --web-addr bound; a wildcard host as this machine's host name if it resolves here, else 127.0.0.1)")
	fs.BoolVar(&p.pprof, "pprof", false, "serve Go's CPU, heap and goroutine profiles under /debug/pprof/ on the web server (behind --web-token)")
	fs.StringVar(&p.webToken, "web-token", "", "bearer token every web page but /healthz, /readyz and /assets/ requires, and calls to the other replicas carry (set it when --web-addr is not loopback)")
}

func (p *processorFlags) config(log *slog.Logger) (job.Config, error) {
	kc, topics, err := p.resolve()
	if err != nil {
		return job.Config{}, err
	}
	memory, memoryErr := memoryLimit(p.memoryLimit)
	minFree, minFreeErr := membudget.Parse(p.stateMinFree)
	in, scores := cmp.Or(p.inputFormat, p.format), cmp.Or(p.scoresFormat, p.format)
	switch {
	case p.partitions <= 0 || p.partitions > 1<<20:
		return job.Config{}, usagef("--partitions: must be between 1 and 1048576, got %d", p.partitions)
	case p.replication == 0 || p.replication < -1 || p.replication > 32767:
		return job.Config{}, usagef("--replication-factor: must be -1 or between 1 and 32767, got %d", p.replication)
	case p.maxMessage <= 0 || p.maxMessage > maxMessageLimit:
		return job.Config{}, usagef("--max-message-bytes: must be between 1 and %d (outputs and dead letters must fit Kafka's 1 MB message limit), got %d", maxMessageLimit, p.maxMessage)
	case p.stateDir == "":
		return job.Config{}, usagef("--state-dir: empty")
	case p.connectTimeout <= 0:
		return job.Config{}, usagef("--connect-timeout: must be positive")
	case p.shutdownTimeout <= 0:
		return job.Config{}, usagef("--shutdown-timeout: must be positive")
	case p.join != "latest" && p.join != "as-of":
		return job.Config{}, usagef("--join: %q is not latest or as-of", p.join)
	case p.join == "as-of" && p.scoreHistory <= 0:
		return job.Config{}, usagef("--score-history: must be positive with --join as-of")
	case memoryErr != nil:
		return job.Config{}, usagef("--memory-limit: %v", memoryErr)
	case minFreeErr != nil:
		return job.Config{}, usagef("--state-min-free: %v", minFreeErr)
	case p.outputShape != "seed" && p.outputShape != "merge":
		return job.Config{}, usagef("--output-shape: %q is not seed or merge", p.outputShape)
	case !knownFormat(p.format):
		return job.Config{}, usagef("--format: %q is not json, avro, protobuf or json-schema", p.format)
	case !knownFormat(in):
		return job.Config{}, usagef("--input-format: %q is not json, avro, protobuf or json-schema", in)
	case !knownFormat(scores):
		return job.Config{}, usagef("--scores-format: %q is not json, avro, protobuf or json-schema", scores)
	case p.outputFormat != "" && p.outputFormat != in:
		return job.Config{}, usagef("--output-format: %q is not the inputs' format, %s: an output is its input's record with the score, in the input's format", p.outputFormat, in)
	case (registryFormat(in) || registryFormat(scores)) && p.registry.URL == "":
		return job.Config{}, usagef("--schema-registry: needed with a registry format (%s inputs, %s scores)", in, scores)
	case registryFormat(in) && p.outputShape != "seed":
		return job.Config{}, usagef("--output-shape: for json inputs only; a %s output is always its input's record with the score", in)
	case registryFormat(in) && p.keyField != "key":
		return job.Config{}, usagef("--key-field: for json inputs only; %s records are joined on the Kafka record key", in)
	case registryFormat(in) && p.outputScore == "":
		return job.Config{}, usagef("--output-score-field: must not be empty")
	case in == "json" && scores != "json":
		return job.Config{}, usagef("--scores-format: %s scores need registry-format inputs; with json inputs, scores are json too", scores)
	case in == "json" && p.outputShape == "seed" && (p.keyField != "key" || p.scoreField != "score"):
		return job.Config{}, usagef("--key-field and --score-field: need --output-shape merge or a registry --format (the seed shape's fields are fixed)")
	case p.keyField == "" || p.scoreField == "":
		return job.Config{}, usagef("--key-field and --score-field: must not be empty")
	case p.recreated != "stop" && p.recreated != "rebuild":
		return job.Config{}, usagef("--changelog-recreated: %q is not stop or rebuild", p.recreated)
	case p.spRetention <= 0:
		return job.Config{}, usagef("--savepoint-retention: must be positive")
	case p.maxScoreAhead <= 0:
		return job.Config{}, usagef("--max-score-ahead: must be positive")
	case p.commitInterval <= 0:
		return job.Config{}, usagef("--commit-interval: must be positive")
	case p.txnTimeout < time.Second || p.txnTimeout < 2*p.commitInterval:
		return job.Config{}, usagef("--transaction-timeout: must be at least 1s and twice --commit-interval")
	case p.standbyReplicas < 0:
		return job.Config{}, usagef("--standby-replicas: must not be negative, got %d", p.standbyReplicas)
	case p.maxWarmups < 1:
		return job.Config{}, usagef("--max-warmups: must be at least 1, got %d", p.maxWarmups)
	case p.cleanupDelay <= 0:
		return job.Config{}, usagef("--state-cleanup-delay: must be positive")
	case p.acceptableLag < 0:
		return job.Config{}, usagef("--acceptable-recovery-lag: must not be negative, got %d", p.acceptableLag)
	}
	standbys := p.standbyReplicas
	if p.standby && standbys == 0 {
		standbys = 1
	}
	guarantee, err := job.ParseGuarantee(p.guarantee)
	if err != nil {
		return job.Config{}, usagef("--guarantee: %v", err)
	}
	// A stop ends with the session's last commit, which waits for goka's records and then for
	// its request, each bounded by a quarter of the rebalance timeout: a shutdown timeout
	// shorter than both would cut a stop short mid-commit.
	if last := 2 * consumergroup.CommitTimeout(kc.RebalanceTimeout); guarantee == job.ExactlyOnce && p.shutdownTimeout <= last {
		return job.Config{}, usagef("--shutdown-timeout: %s would cut a stop short mid-commit: the last exactly-once commit may take %s (half of --rebalance-timeout)",
			p.shutdownTimeout, last)
	}
	format, err := p.recordFormat(in, topics.Output)
	if err != nil {
		return job.Config{}, err
	}
	if scores != in {
		scoreFormat, err := p.recordFormat(scores, topics.Output)
		if err != nil {
			return job.Config{}, err
		}
		if scores == "json" { // beside registry inputs: any object with the score field
			scoreFormat = codecs.JSONMerge{Limits: codecs.Limits{MaxValueBytes: p.maxMessage}, KeyField: p.keyField, ScoreField: p.scoreField}
		}
		format = codecs.Split{Inputs: format, Scores: scoreFormat}
	}
	var history time.Duration
	if p.join == "as-of" {
		history = p.scoreHistory
	}
	return job.Config{
		Kafka:  kc,
		Topics: topics,
		Create: p.create,
		Spec: topology.Spec{
			Partitions:         int32(p.partitions),
			ReplicationFactor:  int16(p.replication),
			CreateStreams:      p.create,
			SavepointRetention: p.spRetention,
			RequireDurable:     p.requireDurable,
		},
		StateDir:                  p.stateDir,
		Format:                    format,
		DeadLetterMax:             p.maxMessage,
		StandbyReplicas:           standbys,
		MaxWarmups:                p.maxWarmups,
		AcceptableRecoveryLag:     max(p.acceptableLag, 1),
		StateCleanupDelay:         p.cleanupDelay,
		MaxIdle:                   time.Duration(p.maxIdle),
		ScoreHistory:              history,
		MaxScoreAhead:             p.maxScoreAhead,
		RebuildRecreatedChangelog: p.recreated == "rebuild",
		MemoryLimit:               memory,
		StateMinFree:              stateMinFree(minFree),
		Guarantee:                 guarantee,
		CommitInterval:            p.commitInterval,
		TransactionTimeout:        p.txnTimeout,
		CacheEntries:              p.cacheEntries,
		Logger:                    log,
		ConnectTimeout:            p.connectTimeout,
	}, nil
}

// maxIdle is --max-idle: a duration of at least 0, or -1 for no alignment.
type maxIdle time.Duration

func (m *maxIdle) String() string {
	if *m < 0 {
		return "-1"
	}
	return time.Duration(*m).String()
}

func (m *maxIdle) Set(s string) error {
	if s == "-1" {
		*m = -1
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want -1 or a duration of at least 0, like 0, 500ms or 2s")
	}
	*m = maxIdle(d)
	return nil
}

func cmdRun(ctx context.Context, env *environment, args []string) error {
	var pf processorFlags
	fs := newFlags("run", "run [flags]", env.stderr)
	pf.register(fs, true)
	if err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	log, err := pf.logs.logger(env.stderr)
	if err != nil {
		return err
	}
	cfg, err := pf.config(log)
	if err != nil {
		return err
	}
	return runProcessor(ctx, cfg, pf)
}

func cmdDev(ctx context.Context, env *environment, args []string) error {
	var pf processorFlags
	var listen, dataDir string
	fs := newFlags("dev", "dev [flags]", env.stderr)
	pf.register(fs, false)
	fs.StringVar(&listen, "listen", "127.0.0.1:9092", "address of the embedded broker")
	fs.StringVar(&dataDir, "data-dir", "./data", "where the embedded broker keeps its topics, offsets and groups")
	if err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	log, err := pf.logs.logger(env.stderr)
	if err != nil {
		return err
	}
	pf.kafka.brokers = listen
	pf.create = true
	cfg, err := pf.config(log)
	if err != nil {
		return err
	}
	broker, err := embedded.Start(embedded.Config{Addr: listen, DataDir: dataDir, Logger: log})
	if err != nil {
		return err
	}
	defer broker.Close()
	log.Info("dev mode: produce with `enricher produce input|score`, read with `enricher consume output`",
		"brokers", broker.Addr(), "state_dir", cfg.StateDir)
	return runProcessor(ctx, cfg, pf)
}

// runProcessor runs the processor, and the web server unless disabled, until ctx ends; then it
// gives the processor the shutdown timeout to stop cleanly. The web server binds its port
// before the processor starts, so a port that is taken stops the start before any store opens.
func runProcessor(ctx context.Context, cfg job.Config, pf processorFlags) error {
	shutdownTimeout := pf.shutdownTimeout
	cfg.Stats = job.NewStats()
	webErr := make(chan error, 1)
	var advert members.Advert
	if pf.webAddr == "" {
		var err error
		if advert, err = members.NewAdvert(""); err != nil {
			return err
		}
	} else {
		adm, err := cfg.Kafka.Admin()
		if err != nil {
			return err
		}
		defer adm.Close()
		srv, err := web.New(web.Config{Addr: pf.webAddr, Advertise: pf.advertiseAddr, Token: pf.webToken, Topics: cfg.Topics,
			Scheme: cfg.Kafka.Partitioner, Directory: members.NewDirectory(adm, cfg.Topics.Group, cfg.Topics.Input),
			Stats: cfg.Stats, Logger: cfg.Logger, Profiling: pf.pprof})
		if err != nil {
			return usagef("%v", err)
		}
		ln, err := srv.Listen()
		if err != nil {
			return err
		}
		advert = srv.Advert()
		cfg.OnProcessor = srv.Attach
		wctx, stopWeb := context.WithCancel(ctx)
		defer stopWeb()
		go func() { webErr <- srv.Serve(wctx, ln) }()
	}
	cfg.Advert = advert
	r, err := job.New(cfg)
	if err != nil {
		return usagef("%v", err)
	}
	// The Go runtime's soft limit comes from the same budget the caches and stores are sized
	// from; an operator's own GOMEMLIMIT wins.
	if _, set := os.LookupEnv("GOMEMLIMIT"); cfg.MemoryLimit > 0 && !set {
		debug.SetMemoryLimit(int64(float64(cfg.MemoryLimit) * membudget.GoLimitShare))
	}
	// The processor has a context of its own: a web server that fails stops it as a signal
	// does (flush, commit, close the stores), then the failure is returned.
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- r.Run(pctx) }()
	var failure error
	select {
	case err := <-done:
		return err
	case failure = <-webErr:
	case <-ctx.Done():
	}
	stop()
	cfg.Logger.Info("stopping: flushing outputs and committing offsets", "timeout", shutdownTimeout.String())
	select {
	case err := <-done:
		return errors.Join(failure, err)
	case <-time.After(shutdownTimeout):
		return errors.Join(failure, fmt.Errorf("processor did not stop within %s", shutdownTimeout))
	}
}

// memoryLimit reads --memory-limit in bytes: 0 for none, an error for a value that is not a
// positive size.
func memoryLimit(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := membudget.Parse(v)
	if err == nil && n == 0 {
		err = errors.New("must be positive")
	}
	return n, err
}

// stateMinFree is job.Config.StateMinFree for --state-min-free: 0 there means off, where the
// Config's zero is its default.
func stateMinFree(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// knownFormat reports whether format names a record format.
func knownFormat(format string) bool { return format == "json" || registryFormat(format) }

// registryFormat reports whether format names a format whose schemas are in a schema registry.
func registryFormat(format string) bool {
	return format == "avro" || format == "protobuf" || format == "json-schema"
}

// recordFormat is the wire format named (with --output-shape for json); output is the output
// topic, whose value subject a registry format's output schema is registered under.
func (p *processorFlags) recordFormat(name, output string) (codecs.Format, error) {
	limits := codecs.Limits{MaxValueBytes: p.maxMessage}
	var f codecs.Format
	var err error
	switch {
	case registryFormat(name):
		reg := p.registry
		if p.registryCA != "" {
			pool, err := kafkaconf.CAPool(p.registryCA)
			if err != nil {
				return nil, usagef("--schema-registry-ca: %v", err)
			}
			reg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		}
		// TopicNameStrategy, Confluent's serializers' default: the output's value subject.
		subject := output + "-value"
		switch name {
		case "avro":
			f, err = codecs.NewAvro(codecs.AvroConfig{Registry: reg, OutputSubject: subject,
				ScoreField: p.scoreField, OutputScoreField: p.outputScore, Limits: limits})
		case "protobuf":
			f, err = codecs.NewProtobuf(codecs.ProtobufConfig{Registry: reg, OutputSubject: subject,
				ScoreField: p.scoreField, OutputScoreField: p.outputScore, Limits: limits})
		default:
			f, err = codecs.NewJSONSchema(codecs.JSONSchemaConfig{Registry: reg, OutputSubject: subject,
				ScoreField: p.scoreField, OutputScoreField: p.outputScore, Limits: limits})
		}
		if err != nil {
			return nil, usagef("--schema-registry: %v", err)
		}
		return f, nil
	case p.outputShape == "merge":
		return codecs.JSONMerge{Limits: limits, KeyField: p.keyField, ScoreField: p.scoreField}, nil
	}
	return codecs.JSON{Limits: limits}, nil
}
