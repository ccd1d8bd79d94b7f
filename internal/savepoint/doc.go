// Package savepoint records, checks and restores the state of an enricher job: per partition,
// the group's committed offsets on the input and scores topics and the end offsets of the
// table's changelog. The changelog is the state; the offsets say how far the inputs had been
// processed when it was cut.
//
// Taken while replicas run, a savepoint is an at-least-once cut: committed offsets are read
// before the changelog's end offsets, and goka commits an input only after its table writes
// are acknowledged, so replaying the inputs after the committed offsets on top of the recorded
// table converges to the same table. Taken while the group is empty, it is exact.
//
// A savepoint is restored into a new group (a new version of the job: its table is written
// from the old changelog, its offsets committed) or into the same group (a rollback: records
// that make the table equal the savepoint's are appended to the changelog, and the offsets are
// reset). Both check everything before they write anything.
package savepoint
