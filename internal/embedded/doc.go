// Package embedded runs an in-process, Kafka-protocol broker (franz-go's kfake) that persists
// topics, offsets and groups to a directory, for `enricher dev`: the whole job on one machine
// with no Kafka installed.
//
// It is for demos and local development only: one node, no replication, all data held in memory
// as well as on disk. Production points --brokers at a real Kafka cluster.
package embedded
