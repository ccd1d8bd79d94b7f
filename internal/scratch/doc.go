// Package scratch holds a changelog's latest value per key in a LevelDB in a temporary
// directory, so the whole-table tools (table dump, replay --dump, savepoint restore) hold a table
// of any size on disk, partition by partition, with memory bounded by LevelDB's write buffer and
// block cache rather than by the number of keys.
package scratch
