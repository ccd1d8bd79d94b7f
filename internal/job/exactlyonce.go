package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/enricher/enricher/internal/producer"
	"github.com/enricher/enricher/internal/store"
)

// Guarantee is the processing guarantee of a Runner.
type Guarantee string

const (
	// AtLeastOnce commits offsets after their records' writes: a crash redoes the records
	// since the last commit, and their outputs appear twice.
	AtLeastOnce Guarantee = "at-least-once"
	// ExactlyOnce commits each batch's outputs, dead letters, table writes and offsets in one
	// Kafka transaction; read_committed readers see each output once.
	ExactlyOnce Guarantee = "exactly-once"
)

// ParseGuarantee returns the guarantee s names.
func ParseGuarantee(s string) (Guarantee, error) {
	switch g := Guarantee(s); g {
	case AtLeastOnce, ExactlyOnce:
		return g, nil
	}
	return "", fmt.Errorf("must be %s or %s, got %q", AtLeastOnce, ExactlyOnce, s)
}

// transactionalIDFile holds a replica's transactional id in its state directory, so the
// replica that restarts on it fences its earlier self at once and aborts the transaction that
// was open when it stopped.
const transactionalIDFile = "transactional-id"

// TransactionalID returns the transactional id of the replica on stateDir: group and
// instanceID when the member is static, else group and an id kept in the state directory.
func TransactionalID(stateDir, group, instanceID string) (string, error) {
	if instanceID != "" {
		return group + "-" + instanceID, nil
	}
	id, err := persistedID(filepath.Join(stateDir, transactionalIDFile), group+"-")
	if err != nil {
		return "", fmt.Errorf("transactional id: %w", err)
	}
	return id, nil
}

// persistedID returns the id the file at path holds, or writes a new random one there, prefixed.
func persistedID(path, prefix string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := prefix + hex.EncodeToString(r[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", err
	}
	return id, nil
}

// committer is the consumer group's Committer under exactly-once: the transactions run on the
// producer goka built for the processor running now, and a commit moves the table writes it
// held into LevelDB.
type committer struct {
	p      atomic.Pointer[producer.Transactional]
	stores *store.Held
	// fatal holds an ErrFenced met too often to be one replica's own past: another process runs
	// with this replica's transactional id, and each restart fences it in turn.
	fatal atomic.Pointer[error]

	mu     sync.Mutex
	fenced []time.Time
}

// Fencing is a clash once it happens fencedClash times within fencedWindow. Once alone it is
// the broker aborting a transaction that outlived its timeout (a replica paused that long):
// the processor restarts with a new producer epoch.
const (
	fencedClash  = 3
	fencedWindow = 2 * time.Minute
)

// check notes a fenced producer and returns err.
func (c *committer) check(err error) error {
	if !errors.Is(err, producer.ErrFenced) {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	recent := c.fenced[:0]
	for _, at := range c.fenced {
		if now.Sub(at) < fencedWindow {
			recent = append(recent, at)
		}
	}
	c.fenced = append(recent, now)
	if len(c.fenced) >= fencedClash {
		c.fatal.CompareAndSwap(nil, &err)
	}
	return err
}

// fatalErr returns the fencing the committer met, if any.
func (c *committer) fatalErr() error {
	if p := c.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *committer) producer() (*producer.Transactional, error) {
	if p := c.p.Load(); p != nil {
		return p, nil
	}
	return nil, errors.New("no transactional producer: the processor is not running")
}

func (c *committer) Begin(partitions []int32) error {
	p, err := c.producer()
	if err != nil {
		return err
	}
	c.stores.Own(partitions)
	return c.check(p.Begin())
}

func (c *committer) Commit(ctx context.Context, meta *sarama.ConsumerGroupMetadata, offsets map[string]map[int32]int64) error {
	p, err := c.producer()
	if err != nil {
		return err
	}
	if err := p.Commit(ctx, offsets, meta); err != nil {
		c.stores.Discard()
		return c.check(err)
	}
	return c.stores.Commit()
}

// Failed is the current producer's Failed, or a channel never closed without one.
func (c *committer) Failed() <-chan struct{} {
	if p := c.p.Load(); p != nil {
		return p.Failed()
	}
	return nil
}

func (c *committer) Abort() error {
	c.stores.Discard()
	p, err := c.producer()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), abortTimeout)
	defer cancel()
	return c.check(p.Abort(ctx))
}

// abortTimeout bounds an abort: it waits for the records in flight to be answered.
const abortTimeout = 30 * time.Second
