// Package kafkaconf turns enricher's Kafka settings (brokers, protocol version, partitioner)
// into client configurations: hardened sarama configs for goka's consumers, and franz-go
// clients for goka's producer and the tools (admin, produce, consume).
//
// goka's defaults lose data for this job: new groups start at the newest offset, the producer
// waits for the leader only (acks=1). Every config built here starts new groups at the oldest
// offset, and every producer waits for all in-sync replicas and is idempotent, so neither a
// broker failover nor a retry loses or reorders a record.
package kafkaconf
