#!/usr/bin/env bash
# The scale run of the state scale-out (docs/scaling.md): TestScaleRun at 10M keys on 12
# partitions with one standby copy each, every replica under --memory-limit, 1 -> 2 -> 3 -> 4
# replicas under load, then a SIGKILL. It prints per-replica disk and peak RSS, the time until
# each joiner owns its share, the longest stalls, and cold restore records/s next to a raw read.
# CI runs the same test at 200k keys (scripts/test.sh).
#
#   scripts/scale.sh                  10M keys, 1GiB per replica
#   scripts/scale.sh 2000000 512MiB   another size and budget
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export ENRICHER_SCALE_KEYS=${1:-10000000} ENRICHER_SCALE_MEMORY=${2:-1GiB}
broker_dir=""
if [ -z "${KAFKA_BROKERS:-}" ]; then
  broker_dir=$(mktemp -d "${TMPDIR:-/tmp}/enricher-scale-kafka-XXXXXX")
  trap 'scripts/kafka.sh stop "$broker_dir" || true; rm -rf "$broker_dir"' EXIT
  KAFKA_BROKERS=$(scripts/kafka.sh start "$broker_dir")
  export KAFKA_BROKERS
fi
go test -count=1 -timeout 3h -run '^TestScaleRun$' -v ./tests
