#!/usr/bin/env bash
# Runs the side-by-side benchmark (go run ./bench): enricher, a franz-go loop, Kafka Streams and
# Flink on one real Apache Kafka broker, one after another, with the same workload. Arguments go
# to the benchmark (go run ./bench --help lists them); --quick is the CI smoke run.
#
#   scripts/bench.sh                      the full run: 4 partitions, 100k keys, 2M inputs
#   scripts/bench.sh --keys 1000000 --json bench.json
#
# The broker in KAFKA_BROKERS is used when set; otherwise scripts/kafka.sh installs Apache Kafka
# from Maven Central (cached) and starts one on 127.0.0.1 for the run, its log on /dev/shm when
# that has 8 GiB free (BENCH_BROKER_DIR chooses another place). The Java peers are built
# with Maven (java 17+ and mvn needed; their jars are cached in ~/.m2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# broker_parent: where the broker's log goes. On this kind of machine (a VM disk) the kernel
# writes the broker's dirty pages back in bursts of 200-380 MB/s every ~30 s, and the broker
# stalls 0.3-1 s in each: whichever system was measured then showed the stall as its tail
# (docs/performance.md, 2026-12-07). A tmpfs (/dev/shm) with room for a run's topics keeps the
# stalls out of every system's figures alike; BENCH_BROKER_DIR overrides, e.g. with a disk.
broker_parent() {
  if [ -n "${BENCH_BROKER_DIR:-}" ]; then
    echo "$BENCH_BROKER_DIR"
  elif [ -d /dev/shm ] && [ -w /dev/shm ] \
    && [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -ge $((8 * 1024 * 1024)) ]; then
    echo /dev/shm
  else
    echo "${TMPDIR:-/tmp}"
  fi
}

broker_dir=""
if [ -z "${KAFKA_BROKERS:-}" ]; then
  parent=$(broker_parent)
  mkdir -p "$parent"
  broker_dir=$(mktemp -d "$parent/enricher-bench-kafka-XXXXXX")
  echo "bench.sh: the broker's log is in $broker_dir ($(df -PT "$broker_dir" | awk 'NR == 2 { print $2 }'))" >&2
  trap 'scripts/kafka.sh stop "$broker_dir" || true; rm -rf "$broker_dir"' EXIT
  KAFKA_BROKERS=$(scripts/kafka.sh start "$broker_dir")
fi
go run ./bench --brokers "$KAFKA_BROKERS" "$@"
