package embedded

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// Config configures the embedded broker.
type Config struct {
	// Addr is host:port to listen on; the host must be 127.0.0.1 (kfake binds loopback only).
	Addr string
	// DataDir persists the broker's state across restarts.
	DataDir string
	// CompactEvery is how often compacted topics are cleaned.
	CompactEvery time.Duration
	Logger       *slog.Logger
}

// Start starts the broker, reloading what DataDir holds.
func Start(cfg Config) (*Broker, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Addr, err)
	}
	if host != "127.0.0.1" && host != "localhost" {
		return nil, fmt.Errorf("listen address %q: the embedded broker listens on 127.0.0.1 only", cfg.Addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("listen address %q: bad port", cfg.Addr)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if cfg.CompactEvery <= 0 {
		cfg.CompactEvery = time.Minute
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(cfg.DataDir),
		kfake.SyncWrites(),
		kfake.BrokerConfigs(map[string]string{
			"log.cleaner.backoff.ms": strconv.FormatInt(cfg.CompactEvery.Milliseconds(), 10),
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s (data in %s): %w", cfg.Addr, cfg.DataDir, err)
	}
	b := &Broker{cluster: c, addr: c.ListenAddrs()[0]}
	if cfg.Logger != nil {
		cfg.Logger.Info("embedded broker started: for demos and local development only", "addr", b.addr, "data_dir", cfg.DataDir)
	}
	return b, nil
}

// Addr is the address clients connect to.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker and flushes its state to disk.
func (b *Broker) Close() { b.cluster.Close() }
