// Package topology owns a job's names and shapes on the broker: the topics (input and scores,
// co-partitioned; the output; the group's table "<group>-table" and dead-letter topic
// "<group>-dlq"), the creation of missing topics, and the checks that must hold before a
// processor starts: input and scores co-partitioned, and the table topic compacted with the
// same partition count.
//
// Cluster says how to reach the brokers (TLS and SASL included); Ensure, Check, Describe and
// PartitionCount each open a connection of their own and close it. A failed check is a typed
// error with one clear line: errors.Is it against ErrMissingTopic, ErrNotCopartitioned or
// ErrBadTable, or ask Permanent whether retrying can help.
package topology
