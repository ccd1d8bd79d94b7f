// Package changelog reads and writes a goka table's changelog topic directly, without a
// processor: the latest value per key of each partition up to given offsets (what a replica
// would restore), and the records that make a table's latest-per-key equal a wanted state
// (values for keys that differ, tombstones for keys it should not have), each written to the
// partition it belongs to.
//
// ReadTopic, under all of these, reads any topic from its start, in offset order per partition;
// the dead-letter tools and the benchmark read with it too. Savepoint restore, rollback and
// `enricher replay` are built on the package.
package changelog
