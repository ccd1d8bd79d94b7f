// Package producer is goka's Producer on franz-go: every output, dead letter and changelog write
// of enricher's processor goes through it (goka.WithProducerBuilder).
//
// goka's own producer is sarama's async producer, which for this job's guarantees (acks=all,
// idempotent, never reordered) may keep one produce request in flight per broker, and passes
// each message through several goroutines and channels. franz-go's idempotent producer keeps up
// to five requests in flight without reordering, batches per partition, and retries a failed
// request on its own: under the benchmark the emit path was the largest share of the
// processor's CPU, and most of an output's latency was its wait for the previous request's
// acknowledgement. Records are partitioned by the configured scheme, a header can pin a record
// to a partition (changelog writes use it), and each goka promise is resolved with the offset
// the record got, which goka stores as the table's changelog offset.
//
// Transactional is the same producer under exactly-once: its records go into Kafka
// transactions, and its Commit adds the consumer offsets with the consumer group session's
// generation and member id (KIP-447) before it ends the transaction.
package producer
