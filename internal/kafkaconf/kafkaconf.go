package kafkaconf

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/partition"
	"github.com/enricher/enricher/topology"
)

// DefaultVersion is the Kafka protocol version sarama speaks unless told otherwise. Kafka 4.x
// dropped the protocol versions older than 2.1; 3.6 is understood by 2.8+ brokers and by the
// embedded broker.
const DefaultVersion = "3.6.0"

// Config holds the settings every Kafka client of enricher shares.
type Config struct {
	Brokers     []string
	ClientID    string
	Version     string
	Partitioner partition.Scheme
	// Linger is how long a producer waits to fill a batch. The default is 0: franz-go sends a
	// batch at once while fewer than five requests are in flight, and batches up whatever
	// arrives while they are, so batches grow with the load without a delay at low load (a
	// linger only added latency under the benchmark: docs/performance.md).
	Linger time.Duration
	// SessionTimeout is how long the group coordinator waits for a member's heartbeat before it
	// declares the member dead and moves its partitions: the failover time after a crash.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often members heartbeat; a member learns of a rebalance on its
	// next heartbeat, and a rebalance waits for the last member to learn of it, so this bounds
	// how long a rebalance stops the partitions of the members that learnt first.
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long the coordinator waits for every member to rejoin a
	// rebalance. A member keeps heartbeating while it finishes its session, so a live member
	// whose last commit is slow holds the rebalance up this long at most, and is dropped from
	// the group after it; a dead one stops heartbeating and is dropped after the session
	// timeout. Exactly-once bounds its last commit by half of it (consumergroup).
	RebalanceTimeout time.Duration
	// InstanceID, when set, makes the member static (KIP-345): a replica that restarts with the
	// same id within the session timeout takes its partitions back without a rebalance.
	InstanceID string
	// Security is TLS and SASL for every connection.
	Security Security
	// Logger, if set, receives the franz-go clients' warnings and errors (retries, dropped
	// connections, failed writes), and their info messages at debug. nil logs nothing.
	Logger *slog.Logger
}

// Defaults returns a Config for a broker on 127.0.0.1:9092.
func Defaults() Config {
	return Config{
		Brokers:     []string{"127.0.0.1:9092"},
		ClientID:    "enricher",
		Version:     DefaultVersion,
		Partitioner: partition.Murmur2,

		// A crash costs the session timeout, then up to a heartbeat until the survivors hear of
		// the rebalance: 6 s is the broker's default minimum (group.min.session.timeout.ms).
		// sarama heartbeats from its own goroutine, so a busy processor does not miss them; 20
		// would have to go missing in a row.
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 300 * time.Millisecond,
		// sarama's default, as Kafka Streams gives a member max.poll.interval.ms (5 min): room
		// for a loaded member's last exactly-once commit before the group drops it.
		RebalanceTimeout: 60 * time.Second,
	}
}

// ParseBrokers splits a comma-separated broker list and checks each is host:port.
func ParseBrokers(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return nil, fmt.Errorf("broker %q is not host:port", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no brokers given")
	}
	return out, nil
}

// Validate reports the first setting that is wrong.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("brokers: none given")
	}
	if _, err := sarama.ParseKafkaVersion(c.Version); err != nil {
		return fmt.Errorf("kafka-version: %w", err)
	}
	if _, err := partition.Parse(string(c.Partitioner)); err != nil {
		return err
	}
	if c.Linger < 0 {
		return errors.New("linger: must not be negative")
	}
	if err := c.Security.validate(); err != nil {
		return err
	}
	if c.RebalanceTimeout < time.Second {
		return fmt.Errorf("rebalance-timeout %s must be at least 1s", c.RebalanceTimeout)
	}
	if c.SessionTimeout <= 0 || c.HeartbeatInterval <= 0 || c.HeartbeatInterval*3 > c.SessionTimeout {
		return fmt.Errorf("heartbeat-interval %s must be positive and at most a third of session-timeout %s",
			c.HeartbeatInterval, c.SessionTimeout)
	}
	return nil
}

// Sarama returns a new sarama config for goka's consumers, topic manager and views: goka's
// defaults with the settings that keep this job from losing data. goka produces through
// enricher's franz-go producer (package producer), so the config carries no producer settings.
// Each call returns a fresh config, because goka's builders write into the config they are given.
func (c Config) Sarama() (*sarama.Config, error) {
	version, err := sarama.ParseKafkaVersion(c.Version)
	if err != nil {
		return nil, fmt.Errorf("kafka version: %w", err)
	}
	cfg := goka.DefaultConfig()
	cfg.Version = version
	cfg.ClientID = c.ClientID
	cfg.Metadata.AllowAutoTopicCreation = false
	// A new group reads its inputs from the start: scores written before the first start count.
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	// A partition consumer that subscribes while its broker connection waits in a fetch of idle
	// partitions starts only when that fetch returns, so sarama's 500 ms delayed the inputs
	// after every restore. Fetches return as soon as data arrives either way; a short wait only
	// costs an idle connection more empty fetches.
	cfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{goka.CopartitioningStrategy}
	cfg.Consumer.Group.Session.Timeout = c.SessionTimeout
	cfg.Consumer.Group.Heartbeat.Interval = c.HeartbeatInterval
	cfg.Consumer.Group.Rebalance.Timeout = c.RebalanceTimeout
	cfg.Consumer.Group.InstanceId = c.InstanceID
	if err := c.Security.applySarama(cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sarama config: %w", err)
	}
	return cfg, nil
}

// Client returns a franz-go client for the brokers; opts come after enricher's own. Its
// producer waits for every in-sync replica and is idempotent (franz-go's default), so neither a
// broker failover nor a retry loses, duplicates or reorders a record.
func (c Config) Client(opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(c.Linger),
	}
	if c.Logger != nil {
		base = append(base, kgo.WithLogger(kgoLogger{c.Logger}))
	}
	sec, err := c.Security.kgoOpts()
	if err != nil {
		return nil, err
	}
	base = append(base, sec...)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// Admin returns an admin client; closing it closes the client it wraps. Its metadata cache lives 100ms instead of franz-go's 5s, so a topic it just created is listed.
func (c Config) Admin() (*kadm.Client, error) {
	cl, err := c.Client(kgo.MetadataMinAge(100 * time.Millisecond))
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// PartitionRecord sets r.Partition from r.Key with the configured scheme, for clients built with
// Client (they partition manually). A record without a key keeps the partition it has.
func (c Config) PartitionRecord(r *kgo.Record, partitions int32) {
	if r.Key != nil {
		r.Partition = c.Partitioner.Partition(r.Key, partitions)
	}
}

// Cluster returns the brokers, client id, TLS and SASL settings as the public topology package
// takes them; it reads the TLS files.
func (c Config) Cluster() (topology.Cluster, error) {
	tc, err := c.Security.tlsConfig()
	if err != nil {
		return topology.Cluster{}, err
	}
	return topology.Cluster{Brokers: c.Brokers, ClientID: c.ClientID, TLS: tc,
		SASL: topology.SASL{Mechanism: c.Security.SASLMechanism, User: c.Security.SASLUser, Password: c.Security.SASLPassword}}, nil
}
