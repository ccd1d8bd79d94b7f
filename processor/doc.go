// Package processor runs enricher's goka processor: the callbacks that enrich inputs with the
// latest score of their key and keep that score in the group table, and a Runner that builds
// the processor with hardened settings and keeps it running.
//
// The callbacks decode records themselves, so a malformed record goes to the dead-letter topic
// with its reason instead of stopping the processor. The Runner guards the local LevelDB store:
// a store that is corrupt, ahead of its changelog, or behind the changelog's retention is moved
// aside and rebuilt from the changelog, never trusted. Because goka's Processor.Run can be
// called once only, the Runner builds a new processor after a failure (a broker that went away)
// and runs it again with backoff, keeping the local state; it stops on context cancellation.
//
// The stores are also made fast where goka is slow: a store is restored ahead of goka with a
// franz-go reader and batched LevelDB writes that carry their last offset, whatever goka still
// restores is batched too, a graceful close writes the memtable out so the next start replays no
// journal, and a read cache serves the scores inputs look up (see docs/performance.md).
//
// Under exactly-once (Config.Guarantee) the Runner builds a transactional producer, hands the
// consumer group a committer, and puts each owned partition's table writes in memory in front
// of LevelDB until their transaction commits, so the local store never runs ahead of the
// committed changelog.
package processor
