// Package topology owns enricher's names and shapes on the broker: the goka group graph
// (inputs `input` and `scores`, the persisted score table `<group>-table`, the `output` stream
// and the `<group>-dlq` dead-letter stream), the creation of missing topics, and the checks that
// must hold before a processor starts: input and scores co-partitioned, and the table topic
// compacted with the same partition count. A failed check is a typed error with one clear line.
package topology
