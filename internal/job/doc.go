// Package job is the engine behind the public processor package and the enricher command: the
// callbacks that enrich inputs with the latest score of their key and keep that score in the
// group table, the goka group graph, and a Runner that builds the processor with hardened
// settings and keeps it running. Its types carry the operator surface's internals (per-partition
// stats, the stores' lookups, the goka processor), which the public package keeps to itself.
//
// The callbacks decode records themselves, so a malformed record goes to the dead-letter topic
// with its reason instead of stopping the processor; an input's score comes from the score
// cache of its partition's local store (package store), which the Runner hands the callbacks.
// Because goka's Processor.Run can be called once only, the Runner builds a new processor after
// a failure (a broker that went away) and runs it again with backoff, keeping the local state;
// it stops on context cancellation, and on a store the store package cannot recover.
//
// Under exactly-once (Config.Guarantee) the Runner builds a transactional producer, hands the
// consumer group a committer, and has the stores hold each owned partition's table writes until
// their transaction commits.
package job
