#!/usr/bin/env bash
# Installs and runs a real Apache Kafka broker (KRaft, single node) on 127.0.0.1 for enricher's
# system tests, CI and benchmarks. No Docker: the broker's jars come from Maven Central.
#
#   scripts/kafka.sh install            fetch the jars into the cache (reused when present)
#   scripts/kafka.sh start [DIR]        format and start a broker in DIR, wait until it answers,
#                                       print its address (127.0.0.1:PORT) on stdout
#   scripts/kafka.sh stop [DIR]         SIGTERM the broker by its PID file, wait, SIGKILL if stuck
#   scripts/kafka.sh restart [DIR]      start a stopped broker again: same config, ports and data
#   scripts/kafka.sh status [DIR]       print the address if the broker in DIR is running
#
# DIR defaults to ./.kafka. Environment: ENRICHER_KAFKA_CACHE (jar cache, default
# ~/.cache/enricher), KAFKA_PORT (broker port, default a free one), KAFKA_HEAP (default 512m).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
cache=${ENRICHER_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/enricher}
lib="$cache/kafka-$kafka_version/lib"

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }

install() {
  if [ -f "$lib/.complete" ]; then return 0; fi
  command -v java >/dev/null || die "java not found: install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
  log "installing Apache Kafka $kafka_version jars from Maven Central into $lib"
  rm -rf "$lib.tmp"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$lib.tmp" -DincludeScope=runtime >&2 || die "mvn could not fetch the Kafka jars"
  touch "$lib.tmp/.complete"
  rm -rf "$lib" && mv "$lib.tmp" "$lib"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() { # running DIR: the PID in DIR/kafka.pid is alive
  local pidfile="$1/kafka.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

start() {
  local dir port cport pid
  dir=$(mkdir -p "$1" && cd "$1" && pwd)
  if running "$dir"; then cat "$dir/address"; return 0; fi
  install
  port=${KAFKA_PORT:-$(free_port)}
  cport=$(free_port)
  while [ "$cport" = "$port" ]; do cport=$(free_port); done
  rm -rf "$dir/data" "$dir/logs"
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.io.threads=4
num.network.threads=2
log.cleaner.backoff.ms=200
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.min.cleanable.ratio=0.01
log.cleaner.min.compaction.lag.ms=0
log.cleaner.delete.retention.ms=1000
PROPS
  local id
  id=$(java -XX:TieredStopAtLevel=1 -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>>"$dir/logs/format.log")
  java -XX:TieredStopAtLevel=1 -cp "$lib/*" kafka.tools.StorageTool format -t "$id" \
    -c "$dir/server.properties" --ignore-formatted >>"$dir/logs/format.log" 2>&1 \
    || die "formatting KRaft storage failed: see $dir/logs/format.log"
  launch "$dir"
}

# launch DIR: start the broker configured in DIR/server.properties (formatted already) and wait
# until its broker port accepts connections.
launch() {
  local dir=$1 pid port
  port=$(sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$dir/server.properties")
  local jvm=(-Xms256m "-Xmx${KAFKA_HEAP:-512m}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$here/kafka/log4j2.properties" "-Dkafka.logs.dir=$dir/logs")
  nohup java "${jvm[@]}" -cp "$lib/*" kafka.Kafka "$dir/server.properties" \
    >>"$dir/logs/stdout.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/kafka.pid"
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until port_open "$port"; do
    kill -0 "$pid" 2>/dev/null || die "broker exited during start-up: see $dir/logs/stdout.log and server.log"
    [ $SECONDS -lt $deadline ] || { kill -TERM "$pid" 2>/dev/null || true; die "broker not ready after ${KAFKA_START_TIMEOUT:-90}s"; }
    sleep 0.2
  done
  echo "127.0.0.1:$port" | tee "$dir/address"
  log "broker $kafka_version ready at 127.0.0.1:$port (pid $pid, dir $dir)"
}

# restart DIR: start a stopped broker again with its config, ports and data.
restart() {
  local dir
  dir=$(cd "$1" && pwd) || die "no broker directory $1"
  [ -f "$dir/server.properties" ] || die "no broker was started in $dir"
  if running "$dir"; then cat "$dir/address"; return 0; fi
  install
  launch "$dir"
}

stop() {
  local dir=$1 pid
  [ -f "$dir/kafka.pid" ] || { log "no broker in $dir"; return 0; }
  pid=$(cat "$dir/kafka.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30)) killed=""
    while kill -0 "$pid" 2>/dev/null; do
      if [ -z "$killed" ] && [ $SECONDS -ge $deadline ]; then
        log "broker $pid ignored SIGTERM for 30s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        killed=1
      fi
      sleep 0.2
    done
    log "broker $pid stopped"
  fi
  rm -f "$dir/kafka.pid" "$dir/address"
}

cmd=${1:-}
dir=${2:-.kafka}
case "$cmd" in
  install) install; echo "$lib" ;;
  start) start "$dir" ;;
  stop) stop "$dir" ;;
  restart) restart "$dir" ;;
  status) running "$dir" && cat "$dir/address" || { log "not running"; exit 1; } ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
