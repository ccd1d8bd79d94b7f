// Package kafkaconf turns enricher's Kafka settings (brokers, protocol version, partitioner)
// into client configurations: hardened sarama configs for goka, and franz-go clients for the
// tools (admin, produce, consume).
//
// goka's defaults lose data for this job: new groups start at the newest offset, the producer
// waits for the leader only (acks=1) with up to five requests in flight. Every config built here
// starts new groups at the oldest offset and produces with acks=all, idempotence and one request
// in flight, so neither a broker failover nor a retry loses or reorders a record.
package kafkaconf
