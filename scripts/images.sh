#!/usr/bin/env bash
# Builds enricher's container images on this machine, with no image registry to pull from:
#
#   enricher:local        FROM scratch: the static enricher binary (CGO_ENABLED=0), built now
#   enricher-kafka:local  a Debian bookworm root filesystem made by debootstrap, with Java 17
#                         from Debian's packages and the Apache Kafka jars scripts/kafka.sh
#                         fetches from Maven Central; its entry point is `kafka.sh run`
#
#   scripts/images.sh            build both (the Kafka image only when it is missing)
#   scripts/images.sh --rebuild  build the Kafka image again too
#
# Needs a running Docker engine (docker.io's dockerd), and debootstrap, Java and Maven for the
# Kafka image. Environment: DOCKER (default docker), DEBIAN_MIRROR (default the mirror apt uses
# here, else deb.debian.org).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

docker=${DOCKER:-docker}
log() { echo "images.sh: $*" >&2; }

# enricher: a static binary in an otherwise empty image, running as an unprivileged user that
# owns /state.
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
log "building enricher:local"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=local" -o "$ctx/enricher" ./cmd/enricher
mkdir -p "$ctx/state"
"$docker" build -q -t enricher:local -f Dockerfile "$ctx" >/dev/null

if [ "${1:-}" != "--rebuild" ] && "$docker" image inspect enricher-kafka:local >/dev/null 2>&1; then
  log "enricher-kafka:local is there (--rebuild builds it again)"
  exit 0
fi
lib=$(scripts/kafka.sh install)
version=$(basename "$(dirname "$lib")")
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
mirror=${mirror:-http://deb.debian.org/debian}
root="$ctx/rootfs"
log "debootstrap bookworm with Java 17 from $mirror (a few minutes)"
debootstrap --variant=minbase --include=openjdk-17-jre-headless bookworm "$root" "$mirror" >"$ctx/debootstrap.log" 2>&1 \
  || { tail -20 "$ctx/debootstrap.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
# kafka.sh, its pom and logging config, and the jars where kafka.sh looks for them.
mkdir -p "$root/opt/enricher/scripts" "$root/opt/enricher/cache/$version" "$root/var/lib/kafka"
cp scripts/kafka.sh "$root/opt/enricher/scripts/"
cp -r scripts/kafka "$root/opt/enricher/scripts/"
cp -r "$lib" "$root/opt/enricher/cache/$version/lib"
log "importing enricher-kafka:local"
tar -C "$root" -c . | "$docker" import \
  --change 'ENV ENRICHER_KAFKA_CACHE=/opt/enricher/cache KAFKA_PORT=9092 KAFKA_CONTROLLER_PORT=9093' \
  --change 'ENTRYPOINT ["/opt/enricher/scripts/kafka.sh", "run", "/var/lib/kafka"]' \
  - enricher-kafka:local >/dev/null
log "built enricher:local and enricher-kafka:local"
