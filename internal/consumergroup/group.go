package consumergroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/enricher/enricher/internal/stagetime"
)

// Config configures the consumer group goka runs.
type Config struct {
	// MaxIdle sets the timestamp alignment of a partition's topics:
	//   - negative: none; each topic's records reach goka as they are fetched;
	//   - 0: a record waits only for another topic whose records are already on the broker;
	//   - positive: it also waits up to MaxIdle for a topic that has none at all.
	MaxIdle time.Duration
	// First is the topic whose record goes first on equal timestamps.
	First string
	// LagWait bounds a wait for records the broker holds (by the claim's high-water mark) that
	// do not arrive: the mark can stay above the last record for good (transaction markers).
	LagWait time.Duration
	// Stats receives the counters; nil counts nothing.
	Stats *Stats
	// Logger logs session changes and long waits.
	Logger *slog.Logger
	// Commit, if set, makes the group exactly-once: offsets are committed only through it,
	// together with what their records produced, every CommitInterval.
	Commit         Committer
	CommitInterval time.Duration
	// CommitTimeout bounds a commit's wait for goka to finish the records handed to it, and
	// then its commit request, each. 0 is a quarter of the group's rebalance timeout (sarama's
	// Consumer.Group.Rebalance.Timeout): a session's last commit, at a rebalance, then ends
	// within half of it, and the member rejoins before the group gives up on it.
	CommitTimeout time.Duration
	// Rejoin, if set, ends the running session when it receives: the next session's join
	// makes the group rebalance (a warm-up copy that caught up asks for its partition so).
	Rejoin <-chan struct{}
	// Stages, if set, notes when sampled inputs are received and handed to goka, for the
	// breakdown of their outputs' time.
	Stages *stagetime.Tracker
}

// DefaultLagWait is Config.LagWait's default: many fetches' worth, yet short next to a rebalance.
const DefaultLagWait = 2 * time.Second

// Validate reports the first setting that is wrong.
func (c *Config) Validate() error {
	if c.LagWait < 0 {
		return fmt.Errorf("lag wait: must not be negative, got %s", c.LagWait)
	}
	if c.CommitInterval < 0 {
		return fmt.Errorf("commit interval: must not be negative, got %s", c.CommitInterval)
	}
	if c.CommitTimeout < 0 {
		return fmt.Errorf("commit timeout: must not be negative, got %s", c.CommitTimeout)
	}
	return nil
}

// Builder returns a goka.ConsumerGroupBuilder whose groups run on cfg, a sarama config the
// builder owns (it sets the client id).
func Builder(cfg *sarama.Config, c Config) (goka.ConsumerGroupBuilder, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.LagWait == 0 {
		c.LagWait = DefaultLagWait
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = CommitTimeout(cfg.Consumer.Group.Rebalance.Timeout)
	}
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		cfg.ClientID = clientID
		client, err := sarama.NewClient(brokers, cfg)
		if err != nil {
			return nil, fmt.Errorf("consumer group client: %w", err)
		}
		cg, err := sarama.NewConsumerGroupFromClient(group, client)
		if err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("consumer group %s: %w", group, err)
		}
		return &Group{ConsumerGroup: cg, client: client, cfg: c, group: group, instanceID: cfg.Consumer.Group.InstanceId}, nil
	}, nil
}

// Group is the sarama.ConsumerGroup goka runs (goka.WithConsumerGroupBuilder). Its Consume runs
// session after session until its context ends: goka's rebalance loop, which sleeps 5 s after
// every Consume that returns nil, then never reaches that sleep. Within a session, each
// partition's claims reach goka merged into one timestamp-ordered stream (Config.MaxIdle).
type Group struct {
	sarama.ConsumerGroup
	client     sarama.Client
	cfg        Config
	group      string
	instanceID string
}

// Consume runs sessions until ctx ends (then it returns nil) or one fails (then it returns its
// error at once: goka stops on it). Sessions that end straight after they began are spaced by
// a short backoff, so a group that cannot settle does not spin.
func (g *Group) Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error {
	h := &sessionHandler{goka: handler, cfg: &g.cfg, client: g.client, group: g.group, instanceID: g.instanceID}
	var backoff time.Duration
	for {
		began := time.Now()
		// A session under exactly-once ends itself, with the cause, when a commit fails.
		sctx, end := context.WithCancelCause(ctx)
		h.end = end
		stopRejoin := g.rejoinOn(sctx, end)
		err := g.ConsumerGroup.Consume(sctx, topics, h)
		stopRejoin()
		cause := context.Cause(sctx)
		end(nil)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		if g.cfg.Stats != nil {
			g.cfg.Stats.Sessions.Add(1)
		}
		if time.Since(began) > time.Second {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// rejoinOn ends the session of sctx with end when Config.Rejoin receives, until the returned
// stop is called.
func (g *Group) rejoinOn(sctx context.Context, end context.CancelCauseFunc) (stop func()) {
	if g.cfg.Rejoin == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-g.cfg.Rejoin:
			g.cfg.Logger.Info("ending the session to rejoin the group")
			end(nil) // a plain cancel: Consume starts the next session
		case <-sctx.Done():
		case <-done:
		}
	}()
	return func() { close(done) }
}

// Close leaves the group and closes the client the group was built on.
func (g *Group) Close() error {
	return errors.Join(g.ConsumerGroup.Close(), g.client.Close())
}
