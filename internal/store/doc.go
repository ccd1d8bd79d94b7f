// Package store is the local copy of the score table: one LevelDB store per table partition
// under the state directory, built for goka through its storage.Builder (Guard.Builder).
//
// The Guard checks every store against its changelog before goka uses it. A store that is
// corrupt, ahead of its changelog, or behind the changelog's retention is moved aside and
// rebuilt, never trusted; a store whose changelog is empty stops the job
// (ErrStateUnrecoverable), because rebuilding it would silently reset the table.
//
// It also makes the stores fast where goka is slow: a store is restored ahead of goka with a
// reader of the changelog and batched LevelDB writes that carry their last offset, whatever goka
// still restores is batched too, a graceful close writes the memtable out so the next start
// replays no journal, a store whose partition moves away stays open for a while in case it
// comes back, and a Cache of decoded scores serves the lookup every input makes (Caches hands
// each partition's cache to the processor's callbacks).
//
// Under exactly-once, Held keeps each owned partition's table writes in memory in front of
// LevelDB until their transaction commits, so a store never runs ahead of the committed
// changelog. Build writes a store offline (`enricher replay --rebuild`).
package store
