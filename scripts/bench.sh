#!/usr/bin/env bash
# Runs the side-by-side benchmark (go run ./bench): enricher, a franz-go loop, Kafka Streams and
# Flink on one real Apache Kafka broker, one after another, with the same workload. Arguments go
# to the benchmark (go run ./bench --help lists them); --quick is the CI smoke run.
#
#   scripts/bench.sh                      the full run: 4 partitions, 100k keys, 2M inputs
#   scripts/bench.sh --keys 1000000 --json bench.json
#
# The broker in KAFKA_BROKERS is used when set; otherwise scripts/kafka.sh installs Apache Kafka
# from Maven Central (cached) and starts one on 127.0.0.1 for the run. The Java peers are built
# with Maven (java 17+ and mvn needed; their jars are cached in ~/.m2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

broker_dir=""
if [ -z "${KAFKA_BROKERS:-}" ]; then
  broker_dir=$(mktemp -d "${TMPDIR:-/tmp}/enricher-bench-kafka-XXXXXX")
  trap 'scripts/kafka.sh stop "$broker_dir" || true; rm -rf "$broker_dir"' EXIT
  KAFKA_BROKERS=$(scripts/kafka.sh start "$broker_dir")
fi
go run ./bench --brokers "$KAFKA_BROKERS" "$@"
