package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/internal/partition"
	"github.com/enricher/enricher/topology"
)

// usageError is a bad flag, argument or environment variable: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// envName is the environment variable that sets a flag: --state-dir -> ENRICHER_STATE_DIR.
func envName(flagName string) string {
	return "ENRICHER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlags returns a flag set for a subcommand whose --help lists the env variables too.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: enricher %s\n\nFlags (each also read from the ENRICHER_* variable shown):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && !strings.Contains(f.Name, "password") {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(stderr, "  --%s  [%s]\n        %s%s\n", f.Name, envName(f.Name), f.Usage, def)
		})
	}
	return fs
}

// parse applies ENRICHER_* variables, then the command line; flags win over the environment.
func parse(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = usagef("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	// A bad flag is one line, not the whole usage text: print usage only for --help.
	printUsage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = printUsage }()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage()
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}

// kafkaFlags are the settings every command that talks to Kafka takes.
type kafkaFlags struct {
	brokers     string
	version     string
	partitioner string
	clientID    string
	linger      time.Duration
	session     time.Duration
	heartbeat   time.Duration
	rebalance   time.Duration
	instanceID  string
	security    kafkaconf.Security
}

func (k *kafkaFlags) register(fs *flag.FlagSet, withBrokers bool) {
	d := kafkaconf.Defaults()
	if withBrokers {
		fs.StringVar(&k.brokers, "brokers", strings.Join(d.Brokers, ","), "Kafka bootstrap brokers, comma-separated host:port")
	}
	fs.StringVar(&k.version, "kafka-version", d.Version, "Kafka protocol version the processor's client speaks")
	fs.StringVar(&k.partitioner, "partitioner", string(d.Partitioner), "key partitioner for records written and keys looked up: murmur2 (Java clients, Kafka Streams), fnv1a (goka), crc32 (librdkafka)")
	fs.StringVar(&k.clientID, "client-id", d.ClientID, "Kafka client id")
	fs.BoolVar(&k.security.TLS, "tls", false, "connect with TLS, trusting the system's CAs (implied by --tls-ca, --tls-cert, --tls-key)")
	fs.StringVar(&k.security.CAFile, "tls-ca", "", "PEM file of the CA that signed the brokers' certificates")
	fs.StringVar(&k.security.CertFile, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key)")
	fs.StringVar(&k.security.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&k.security.SASLMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	fs.StringVar(&k.security.SASLUser, "sasl-user", "", "SASL user name")
	fs.StringVar(&k.security.SASLPassword, "sasl-password", "", "SASL password; prefer ENRICHER_SASL_PASSWORD over the command line")
	k.linger, k.session, k.heartbeat, k.rebalance = d.Linger, d.SessionTimeout, d.HeartbeatInterval, d.RebalanceTimeout
}

// registerMember adds the flags of a consumer-group member that produces: the processor's.
func (k *kafkaFlags) registerMember(fs *flag.FlagSet) {
	d := kafkaconf.Defaults()
	fs.DurationVar(&k.linger, "linger", d.Linger, "how long the producer waits to fill a batch")
	fs.DurationVar(&k.session, "session-timeout", d.SessionTimeout, "consumer group session timeout: how soon a crashed replica's partitions move (broker minimum: group.min.session.timeout.ms, 6s by default)")
	fs.DurationVar(&k.heartbeat, "heartbeat-interval", d.HeartbeatInterval, "consumer group heartbeat interval: how soon members notice a rebalance (at most a third of --session-timeout)")
	fs.DurationVar(&k.rebalance, "rebalance-timeout", d.RebalanceTimeout, "how long a rebalance waits for every member to rejoin")
	fs.StringVar(&k.instanceID, "instance-id", "", "static group membership id, unique per replica (e.g. a pod name): a replica restarted within the session timeout gets its partitions back without a rebalance")
}

func (k *kafkaFlags) config() (kafkaconf.Config, error) {
	c := kafkaconf.Defaults()
	if k.brokers != "" {
		b, err := kafkaconf.ParseBrokers(k.brokers)
		if err != nil {
			return c, usagef("--brokers: %v", err)
		}
		c.Brokers = b
	}
	scheme, err := partition.Parse(k.partitioner)
	if err != nil {
		return c, usagef("--partitioner: %v", err)
	}
	c.Partitioner, c.Version, c.ClientID, c.Linger = scheme, k.version, k.clientID, k.linger
	c.SessionTimeout, c.HeartbeatInterval, c.RebalanceTimeout, c.InstanceID = k.session, k.heartbeat, k.rebalance, k.instanceID
	c.Security = k.security
	if err := c.Validate(); err != nil {
		return c, usagef("%v", err)
	}
	return c, nil
}

// topicFlags name the job's topics and group.
type topicFlags struct{ t topology.Topics }

func (f *topicFlags) register(fs *flag.FlagSet) {
	d := topology.DefaultTopics()
	fs.StringVar(&f.t.Group, "group", d.Group, "consumer group; the table is <group>-table, the dead-letter topic <group>-dlq")
	fs.StringVar(&f.t.Input, "input", d.Input, "input topic (key, message)")
	fs.StringVar(&f.t.Scores, "scores", d.Scores, "scores topic (key, score); co-partitioned with the input topic")
	fs.StringVar(&f.t.Output, "output", d.Output, "output topic (key, message, score)")
}

func (f *topicFlags) topics() (topology.Topics, error) {
	if err := f.t.Validate(); err != nil {
		return f.t, usagef("topics: %v", err)
	}
	return f.t, nil
}

// logFlags choose the log format and level.
type logFlags struct{ format, level string }

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usagef("--log-level: %q is not debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, usagef("--log-format: %q is not text or json", l.format)
	}
}

// jobFlags name the cluster and the job: the flags of every command that talks to Kafka.
type jobFlags struct {
	kafka  kafkaFlags
	topics topicFlags
}

func (f *jobFlags) register(fs *flag.FlagSet) {
	f.kafka.register(fs, true)
	f.topics.register(fs)
}

// resolve returns the Kafka settings and the job's topics.
func (f *jobFlags) resolve() (kafkaconf.Config, topology.Topics, error) {
	kc, err := f.kafka.config()
	if err != nil {
		return kc, topology.Topics{}, err
	}
	topics, err := f.topics.topics()
	return kc, topics, err
}

// subcommand splits `COMMAND ACTION [args]` and returns the action, one of actions, and the
// rest; `COMMAND --help` prints the flags.
func subcommand(fs *flag.FlagSet, args []string, actions ...string) (string, []string, error) {
	if len(args) > 0 && slices.Contains(actions, args[0]) {
		return args[0], args[1:], nil
	}
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
		return "", nil, parse(fs, args)
	}
	return "", nil, usagef("want `%s %s`", fs.Name(), strings.Join(actions, "|"))
}

// positional takes the positional argument (a file, a key) that stands before the flags.
func positional(rest []string, command, what string) (string, []string, error) {
	if len(rest) == 0 || rest[0] == "" || rest[0][0] == '-' {
		return "", nil, usagef("%s needs a %s", command, what)
	}
	return rest[0], rest[1:], nil
}

// savepointRetentionUsage documents --savepoint-retention wherever a command creates the table.
const savepointRetentionUsage = "how long a savepoint stays usable: a table topic created gets min.compaction.lag.ms of it, " +
	"so compaction keeps every changelog record that young (a cold restore reads that much superseded history too)"
