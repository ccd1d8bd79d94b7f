#!/usr/bin/env bash
# Runs enricher's whole test suite: formatting and vet checks, unit tests with the race detector,
# short fuzz runs of the codecs and the savepoint parser, the system tests against a real Apache Kafka broker,
# and the benchmark's quick mode (every system, correctness checked, no timing asserted).
#
# The broker in KAFKA_BROKERS is used when set; otherwise scripts/kafka.sh installs Apache Kafka
# from Maven Central (cached) and starts one on 127.0.0.1 for the run. kcat (Debian's librdkafka
# client), chromium (for the browser test) and prometheus (its server and promtool, for the alert
# rules and the scrape test), and docker.io, docker-compose and debootstrap (for the compose test,
# which builds its images with scripts/images.sh) are installed from Debian when missing and
# apt-get is available; a Docker engine is started for the run when none answers.
#   FUZZEXECS    executions per fuzz target (default 100000; 0 skips fuzzing)
#   BENCH_QUICK  0 skips the benchmark smoke run (default 1)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "== $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

missing=()
command -v kcat >/dev/null || missing+=(kcat)
command -v chromium >/dev/null || missing+=(chromium)
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
# pip installs Confluent's Python client (and, without Java 21, the registry's runtime) for the
# registry formats' tests, each into a directory of its own with --target.
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2 \
    || say "could not install ${missing[*]}: the tests that need them will skip (and fail under CI=true)"
fi

say "go modules"
go mod download

say "gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi
go vet ./...

# What the run started, stopped at exit by PID: a broker and a Docker engine.
broker_dir=""
dockerd_pid=""
cleanup() {
  if [ -n "$broker_dir" ]; then scripts/kafka.sh stop "$broker_dir" || true; rm -rf "$broker_dir"; fi
  if [ -n "$dockerd_pid" ]; then kill "$dockerd_pid" 2>/dev/null || true; wait "$dockerd_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

# The compose test needs a Docker engine: Debian's dockerd, with no bridge network and no
# iptables rules (containers use the host's network).
if command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  say "starting a Docker engine (dockerd --bridge=none --iptables=false)"
  dockerd --bridge=none --iptables=false >"${TMPDIR:-/tmp}/enricher-dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || say "dockerd did not start: see ${TMPDIR:-/tmp}/enricher-dockerd.log"
fi

if [ -z "${KAFKA_BROKERS:-}" ]; then
  broker_dir=$(mktemp -d "${TMPDIR:-/tmp}/enricher-kafka-XXXXXX")
  say "starting Apache Kafka"
  KAFKA_BROKERS=$(scripts/kafka.sh start "$broker_dir")
  export KAFKA_BROKERS
fi
say "Kafka at $KAFKA_BROKERS"

say "tests (unit with -race, system against Kafka)"
go test -race -count=1 -timeout 20m ./...

say "the embedding example: a module of its own that builds against processor, codecs and topology through a replace"
(cd examples/orders && go vet ./... && go test -race -count=1 ./...)

say "the Helm chart: rendered as helm template does, every object decoded strictly with the Kubernetes API types"
(cd deploy/helm && go vet ./... && go test -count=1 ./...)

if [ "${BENCH_QUICK:-1}" != "0" ]; then
  say "benchmark smoke run: enricher, franz-go loop, Kafka Streams and Flink (bench --quick)"
  mkdir -p tests/artifacts
  go run ./bench --quick --brokers "$KAFKA_BROKERS" --json tests/artifacts/bench-quick.json
fi

fuzzexecs=${FUZZEXECS:-100000}
if [ "$fuzzexecs" != "0" ]; then
  # Every fuzz target in the module, so a new one cannot be left out of the list. Only the
  # packages that declare one are listed: listing runs a package's TestMain.
  fuzzpkgs=$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
  targets=$(go test -list '^Fuzz' $fuzzpkgs | awk '/^Fuzz/ { t[n++] = $1 } /^ok/ { for (i = 0; i < n; i++) print $2 ":" t[i]; n = 0 }')
  for spec in $targets; do
    pkg=${spec%%:*} target=${spec#*:}
    say "fuzz $pkg $target for $fuzzexecs executions"
    # A count, not a duration: with -fuzztime 10s, Go's fuzz coordinator (go1.26) can report
    # its own deadline as the target's failure, "context deadline exceeded" with no crasher
    # (internal/fuzz: stop(ctx.Err()) runs before the workers' context is cancelled). A count
    # sets no deadline. Go minimizes a new input for up to 60 s by default, counting no
    # executions meanwhile; 1 s keeps it fuzzing.
    go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "${fuzzexecs}x" -fuzzminimizetime 1s -timeout 5m
  done
fi
say "all tests passed"
