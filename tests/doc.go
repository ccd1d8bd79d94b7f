// Package tests holds enricher's system tests: the built `enricher` binary runs as separate OS
// processes against a real Apache Kafka broker, and is stopped with SIGTERM or killed with
// SIGKILL to prove that the score table survives.
//
// The harness uses the broker in KAFKA_BROKERS when set; otherwise it starts one with
// scripts/kafka.sh (Apache Kafka from Maven Central) and stops it afterwards. Under CI=true a
// broker that cannot start fails the run instead of skipping it. Every test uses its own topics
// and group.
package tests
