package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// OffsetRange is a changelog partition's log start offset and high-water mark.
type OffsetRange func(ctx context.Context, topic string, partition int32) (start, end int64, err error)

// Path is where the local store of a table partition lives: goka's own layout, so a
// store built by goka, by `enricher replay --rebuild` or by this package is the same store.
func Path(stateDir, topic string, partition int32) string {
	return filepath.Join(stateDir, fmt.Sprintf("%s.%d", topic, partition))
}

// ErrStateUnrecoverable means a partition's table exists only in a local store: its changelog
// is empty, so Kafka no longer holds the state. Starting would silently reset the table.
var ErrStateUnrecoverable = errors.New("table state cannot be recovered from its changelog")

// Config configures a Guard.
type Config struct {
	// Dir is the state directory: one LevelDB store per table partition (Path).
	Dir string
	// Offsets reads a changelog partition's start and end, to check a store against.
	Offsets OffsetRange
	// Read, if set, restores a store ahead of goka, much faster than goka's record by record.
	Read PartitionReader
	// TopicID, if set, reads the changelog's topic ID: each store records the ID of the topic
	// it was built from, and a store of another topic of the same name (deleted and recreated)
	// stops the job with ErrChangelogRecreated, or with RebuildRecreated is moved aside and
	// rebuilt from the new topic.
	TopicID          TopicIDFunc
	RebuildRecreated bool
	// DB, if set, are the LevelDB options of every store (memtable and block cache sizes);
	// nil takes goleveldb's defaults.
	DB     *opt.Options
	Logger *slog.Logger
	Stats  *Stats
	// CacheEntries is the score cache's size per partition; 0 turns it off.
	CacheEntries int
	// History says the table holds codecs.Versions (the as-of join), not codecs.Score: its
	// caches keep each key's latest version (NewHistoryCache).
	History bool
	// Caches, if set, receives each partition's score cache, for the callbacks' lookups.
	Caches *Caches
	// Held, if set, holds the table writes of the open transaction back (exactly-once).
	Held *Held
	// KeepFor is how long the store of a partition that went to another replica stays open, in
	// case a rebalance soon after gives it back; 0 closes it at once.
	KeepFor time.Duration
}

// Validate reports the first setting that is wrong.
func (c *Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("store: no state directory")
	case c.Offsets == nil:
		return errors.New("store: no changelog offsets")
	case c.Stats == nil:
		return errors.New("store: no stats")
	case c.CacheEntries < 0:
		return fmt.Errorf("store: cache entries must not be negative, got %d", c.CacheEntries)
	case c.KeepFor < 0:
		return fmt.Errorf("store: keep-for must not be negative, got %s", c.KeepFor)
	}
	return nil
}

// NewGuard returns a guard whose restores stop when ctx ends.
func NewGuard(ctx context.Context, c Config) (*Guard, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	g := &Guard{dir: c.Dir, offsets: c.Offsets, log: c.Logger, stats: c.Stats, cache: c.CacheEntries, history: c.History,
		caches: c.Caches, read: c.Read, ctx: ctx, txn: c.Held, topicID: c.TopicID, rebuildRecreated: c.RebuildRecreated, dbOptions: c.DB}
	if c.KeepFor > 0 {
		g.kept = newKeptStores(c.KeepFor, c.Logger)
	}
	return g, nil
}

// CloseKept closes the stores kept open for a next session: goka closed every store it had.
func (g *Guard) CloseKept() error { return g.kept.closeAll() }

// Guard builds goka storages that are checked against the changelog before goka uses them.
type Guard struct {
	dir     string
	offsets OffsetRange
	log     *slog.Logger
	stats   *Stats
	cache   int // score cache entries per partition, 0 for none
	// history: the table holds codecs.Versions (Config.History).
	history bool
	// caches, if set, receives each partition's score cache for the callbacks.
	caches *Caches
	// read, if set, restores a store ahead of goka (preRestore); ctx ends it on a stop.
	read PartitionReader
	ctx  context.Context
	// topicID and rebuildRecreated: see Config.TopicID.
	topicID          TopicIDFunc
	rebuildRecreated bool
	dbOptions        *opt.Options
	// kept, if set, holds stores open between consumer-group sessions.
	kept *keptStores
	// txn, if set, holds the table writes of the open transaction back (exactly-once).
	txn *Held
	// fatal holds an ErrStateUnrecoverable or ErrChangelogRecreated: goka flattens the errors of a storage builder, so the
	// Runner reads it from here to stop instead of restarting.
	fatal atomic.Pointer[error]
	// replicas, once made (Replicas), are the standby and warm-up copies.
	replicas     *Replicas
	replicasOnce sync.Once

	// diskMu orders the opening of stores with the reading of closed stores' offsets: a
	// LevelDB store opens in one place at a time.
	diskMu sync.Mutex
	// inUse are the paths of the stores open for goka or as standby and warm-up copies.
	inUse map[string]bool
	// diskOffsets are the offsets of closed stores read off disk, by path; opening a store
	// forgets its entry.
	diskOffsets map[string]int64
}

// DiskBytes returns, by partition, the bytes on disk of every store of topic in the state
// directory: owned, copies and stores not yet cleaned up alike (moved-aside ones are not counted).
func (g *Guard) DiskBytes(topic string) map[int32]int64 {
	out := map[int32]int64{}
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		return out
	}
	prefix := topic + "."
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		p, err := strconv.ParseInt(rest, 10, 32)
		if err != nil {
			continue // a store moved aside, or another topic's
		}
		var n int64
		_ = filepath.WalkDir(filepath.Join(g.dir, e.Name()), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					n += info.Size()
				}
			}
			return nil
		})
		out[int32(p)] = n
	}
	return out
}

// Fatal returns the ErrStateUnrecoverable the guard met, if any: the Runner stops on it
// instead of restarting.
func (g *Guard) Fatal() error {
	if p := g.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// builder returns the storage.Builder for goka.WithStorageBuilder.
func (g *Guard) Builder() storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		began := time.Now()
		path := Path(g.dir, topic, partition)
		log := g.log.With("topic", topic, "partition", partition)
		g.replicas.settle(partition) // a copy being opened is taken over, not opened beside
		st, db, local, start, end, err := g.openChecked(topic, partition, log)
		if err != nil {
			return nil, err
		}
		var held *txnStore
		if g.txn != nil {
			held = g.txn.wrap(st, db, partition)
			st = held
		}
		newCache := NewCache
		if g.history {
			newCache = NewHistoryCache
		}
		cache := newCache(st, g.cache)
		if g.caches != nil {
			g.caches.Add(partition, cache)
		}
		r := newRestoringStore(cache, db, log, g.stats, local)
		r.start = began
		r.closed = func() { g.setInUse(path, false) }
		if g.kept != nil {
			r.keep = func() bool {
				if held != nil {
					held.release()
				}
				cache.detach()
				return g.kept.keep(path, db)
			}
		}
		// A changelog written in transactions ends in a marker, which goka's recovery never
		// receives as a record: it would wait for one at the last offset. So the fast restore
		// reads to the end, markers included, and again while the end moved meanwhile (a
		// partition another replica still writes), leaving goka nothing to read.
		for round := 0; g.read != nil && end-1 > local && round < 3; round++ {
			from := max(local+1, start)
			g.stats.restoreProgress(partition, from-1, end)
			n, err := preRestore(g.context(), g.read, db, topic, partition, from, end,
				func(offset int64) { g.stats.restoreProgress(partition, offset, end) })
			g.stats.restoreDone(partition)
			r.restored += n
			if err != nil {
				// goka's own recovery reads what is left, from the offset written last
				log.Warn("fast restore stopped: goka restores the rest", "restored", n, "error", err.Error())
				break
			}
			local = end - 1
			ctx, cancel := context.WithTimeout(g.context(), 30*time.Second)
			_, end, err = g.offsets(ctx, topic, partition)
			cancel()
			if err != nil {
				break // goka reads what came since
			}
		}
		r.opened = time.Since(began)
		return r, nil
	}
}

// openChecked takes or opens the store of topic/partition and checks it against its changelog:
// a store the changelog cannot have written (ahead of its end, or behind its start) is moved
// aside and a fresh one opened; a store whose changelog is empty stops the job
// (ErrStateUnrecoverable). It returns the store, its database, the offset it has applied (-1
// for none), and the changelog's start and end.
func (g *Guard) openChecked(topic string, partition int32, log *slog.Logger) (storage.Storage, *leveldb.DB, int64, int64, int64, error) {
	path := Path(g.dir, topic, partition)
	st, db, local, err := g.takeOrOpen(partition, path, log)
	if err != nil {
		return nil, nil, 0, 0, 0, err
	}
	ctx, cancel := context.WithTimeout(g.context(), 30*time.Second)
	start, end, err := g.offsets(ctx, topic, partition)
	var id, recorded string
	if err == nil && g.topicID != nil {
		id, err = g.topicID(ctx, topic)
	}
	cancel()
	if err == nil && id != "" {
		recorded, err = readTopicID(path)
	}
	if err != nil {
		_ = st.Close()
		return nil, nil, 0, 0, 0, fmt.Errorf("check local store of %s/%d against the changelog: %w", topic, partition, err)
	}
	if local >= 0 {
		var why string
		switch {
		case end == 0:
			err := fmt.Errorf("%w: changelog %s/%d is empty but the local store %s holds data up to offset %d: "+
				"the changelog topic was deleted or recreated. Restore the table (enricher savepoint restore), "+
				"or move the store aside to start with an empty table", ErrStateUnrecoverable, topic, partition, path, local)
			g.fatal.CompareAndSwap(nil, &err)
			_ = st.Close()
			return nil, nil, 0, 0, 0, err
		case recorded != "" && recorded != id && !g.rebuildRecreated:
			err := fmt.Errorf("%w: the local store %s was built from topic %s with ID %s, and the topic of that name now has ID %s: "+
				"it was deleted and recreated, so its records are not the ones the store holds. Restore the table "+
				"(enricher savepoint restore), or run with --changelog-recreated rebuild to move the store aside and "+
				"rebuild it from the new topic", ErrChangelogRecreated, path, topic, recorded, id)
			g.fatal.CompareAndSwap(nil, &err)
			_ = st.Close()
			return nil, nil, 0, 0, 0, err
		case recorded != "" && recorded != id:
			why = fmt.Sprintf("local store was built from changelog topic ID %s, and topic %s now has ID %s (deleted and recreated)", recorded, topic, id)
		case local >= end:
			why = fmt.Sprintf("local store is at changelog offset %d but the changelog ends at %d: the store is ahead of the changelog (topic recreated or truncated)", local, end)
		case local+1 < start:
			why = fmt.Sprintf("local store is at changelog offset %d but the changelog now starts at %d: records in between are gone", local, start)
		}
		if why != "" {
			_ = st.Close()
			moved, err := quarantine(path, "stale")
			if err != nil {
				return nil, nil, 0, 0, 0, err
			}
			log.Warn("local store not trusted: rebuilding it from the changelog", "reason", why, "moved_to", moved)
			if st, db, local, err = g.open(path, log); err != nil {
				return nil, nil, 0, 0, 0, err
			}
			recorded = ""
		}
	}
	if id != "" && recorded != id {
		if err := writeTopicID(path, id); err != nil {
			_ = st.Close()
			return nil, nil, 0, 0, 0, err
		}
	}
	return st, db, local, start, end, nil
}

// setInUse records whether the store at path is open for goka or as a copy.
func (g *Guard) setInUse(path string, open bool) {
	g.diskMu.Lock()
	defer g.diskMu.Unlock()
	if open {
		if g.inUse == nil {
			g.inUse = map[string]bool{}
		}
		g.inUse[path] = true
	} else {
		delete(g.inUse, path)
	}
}

// StoreOffsets returns, for every store of topic this replica holds but goka's open ones (which
// the group knows as active), the changelog offset it has applied: its standby and warm-up
// copies, the stores kept open, and the stores closed on disk (read once, then remembered until
// the store opens again). A store that cannot be read is left out.
func (g *Guard) StoreOffsets(topic string) map[int32]int64 {
	out := map[int32]int64{}
	for p, c := range g.replicas.Copies() {
		out[p] = c.Offset
	}
	g.diskMu.Lock()
	defer g.diskMu.Unlock()
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		return out
	}
	prefix := topic + "."
	for _, e := range entries {
		p, err := strconv.ParseInt(strings.TrimPrefix(e.Name(), prefix), 10, 32)
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) || err != nil || p < 0 {
			continue // quarantined stores carry a suffix and never count
		}
		part, path := int32(p), filepath.Join(g.dir, e.Name())
		if _, ok := out[part]; ok || g.inUse[path] {
			continue
		}
		if db := g.kept.peek(path); db != nil {
			if off, err := storedOffset(db); err == nil {
				out[part] = off
			}
			continue
		}
		off, ok := g.diskOffsets[path]
		if !ok {
			if off, err = readOffset(path); err != nil {
				g.log.Warn("cannot read the offset of a local store", "path", path, "error", err.Error())
				continue
			}
			if g.diskOffsets == nil {
				g.diskOffsets = map[string]int64{}
			}
			g.diskOffsets[path] = off
		}
		out[part] = off
	}
	return out
}

// readOffset opens the closed store at path just to read its offset.
func readOffset(path string) (int64, error) {
	db, err := leveldb.OpenFile(path, &opt.Options{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return storedOffset(db)
}

// context is the guard's context, or Background for a guard without one.
func (g *Guard) context() context.Context {
	if g.ctx != nil {
		return g.ctx
	}
	return context.Background()
}

// takeOrOpen takes over the partition's standby or warm-up copy (Replicas), or the store kept
// open at path (keptStores), or opens it.
// The path is in use from then on, until its user calls setInUse(path, false): cleanup leaves it.
func (g *Guard) takeOrOpen(partition int32, path string, log *slog.Logger) (storage.Storage, *leveldb.DB, int64, error) {
	// In use before it opens, so neither cleanup nor a read of closed stores' offsets touches
	// it meanwhile; the opening itself runs unlocked, every partition's at once.
	g.setInUse(path, true)
	g.diskMu.Lock()
	delete(g.diskOffsets, path)
	g.diskMu.Unlock()
	st, db, local, err := g.takeOrOpenInUse(partition, path, log)
	if err != nil {
		g.setInUse(path, false)
	}
	return st, db, local, err
}

// takeOrOpenInUse is takeOrOpen once the path is in use.
func (g *Guard) takeOrOpenInUse(partition int32, path string, log *slog.Logger) (storage.Storage, *leveldb.DB, int64, error) {
	db := g.replicas.take(partition)
	if db == nil {
		db = g.kept.take(path)
	}
	if db == nil {
		return g.open(path, log)
	}
	st, err := storage.New(db)
	if err == nil {
		var local int64
		if local, err = st.GetOffset(-1); err == nil {
			return st, db, local, nil
		}
	}
	_ = closeDB(db)
	return nil, nil, 0, fmt.Errorf("local store %s: %w", path, err)
}

// open opens the LevelDB store at path; a corrupt store is moved aside and a fresh one opened.
// It returns the store, its database and its changelog offset, or -1 for a store that has none.
func (g *Guard) open(path string, log *slog.Logger) (storage.Storage, *leveldb.DB, int64, error) {
	db, err := leveldb.OpenFile(path, g.dbOptions)
	if lerrors.IsCorrupted(err) {
		moved, qerr := quarantine(path, "corrupt")
		if qerr != nil {
			return nil, nil, 0, errors.Join(err, qerr)
		}
		log.Warn("local store is corrupt: moved aside, rebuilding it from the changelog", "error", err.Error(), "moved_to", moved)
		db, err = leveldb.OpenFile(path, g.dbOptions)
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open local store %s: %w", path, err)
	}
	st, err := storage.New(db)
	if err != nil {
		_ = db.Close()
		return nil, nil, 0, fmt.Errorf("open local store %s: %w", path, err)
	}
	local, err := st.GetOffset(-1)
	if err != nil {
		_ = st.Close()
		moved, qerr := quarantine(path, "corrupt")
		if qerr != nil {
			return nil, nil, 0, errors.Join(err, qerr)
		}
		log.Warn("local store has an unreadable offset: moved aside", "error", err.Error(), "moved_to", moved)
		return g.open(path, log)
	}
	return st, db, local, nil
}

// quarantine renames a store directory out of goka's way and returns where it went.
func quarantine(path, why string) (string, error) {
	to := fmt.Sprintf("%s.%s-%s", path, why, time.Now().UTC().Format("20060102T150405.000000000"))
	if err := os.Rename(path, to); err != nil {
		return "", fmt.Errorf("move local store %s aside: %w", path, err)
	}
	return to, nil
}
