#!/usr/bin/env bash
# Installs and runs a real Apache Kafka (KRaft) on 127.0.0.1 for enricher's system tests, CI
# and benchmarks. No Docker: the broker's jars come from Maven Central.
#
#   scripts/kafka.sh install              fetch the jars into the cache (reused when present)
#   scripts/kafka.sh start [DIR]          format and start a single broker in DIR, wait until it
#                                         answers, print its address (127.0.0.1:PORT) on stdout
#   scripts/kafka.sh start-cluster DIR [N]  the same for N nodes (default 3) in DIR/node1..N:
#                                         replication factor 3 and min.insync.replicas=2 by default;
#                                         prints the bootstrap list
#   scripts/kafka.sh start-proxied DIR PROXY_PORT  a single broker as with start, plus a second
#                                         listener that advertises 127.0.0.1:PROXY_PORT: a client
#                                         that bootstraps there reaches the broker only through
#                                         the TCP proxy a test runs on that port (its upstream,
#                                         the listener's own address, is in DIR/proxied-upstream)
#   scripts/kafka.sh start-secure DIR     a single broker whose client listener is SASL_SSL: a CA
#                                         (DIR/certs/ca.pem) and broker certificate are made for
#                                         it; user enricher, password enricher-secret, for PLAIN,
#                                         SCRAM-SHA-256 and SCRAM-SHA-512
#   scripts/kafka.sh run DIR              a single broker in the foreground (a container's entry
#                                         point): KAFKA_PORT (default 9092) and
#                                         KAFKA_CONTROLLER_PORT (default 9093) on 127.0.0.1; the
#                                         storage in DIR is formatted once and kept
#   scripts/kafka.sh stop [DIR]           SIGTERM the broker (every node of a cluster) by its PID
#                                         file, wait, SIGKILL after 30 s
#   scripts/kafka.sh restart DIR          start a stopped broker or node (DIR/nodeI) again: same
#                                         config, ports and data
#   scripts/kafka.sh status [DIR]         print the address if the broker in DIR is running
#
# DIR defaults to ./.kafka. Environment: ENRICHER_KAFKA_CACHE (jar cache, default
# ~/.cache/enricher), KAFKA_PORT (single broker port, default a free one), KAFKA_HEAP (default
# 512m), KAFKA_START_TIMEOUT (seconds, default 90).
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

broker_port() { sed -n 's/^listeners=[A-Z_]*:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$1/server.properties"; }

# configure DIR NODE_ID PORT CONTROLLER_PORT VOTERS REPLICATION MIN_ISR: a fresh node directory.
configure() {
  local dir=$1 id=$2 port=$3 cport=$4 voters=$5 rf=$6 isr=$7
  rm -rf "$dir/data" "$dir/logs"
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
num.io.threads=4
num.network.threads=2
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
replica.lag.time.max.ms=5000
log.cleaner.backoff.ms=200
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.min.cleanable.ratio=0.01
log.cleaner.min.compaction.lag.ms=0
log.cleaner.delete.retention.ms=1000
PROPS
}

# format DIR CLUSTER_ID: format the node's KRaft storage (static quorum: no --standalone).
format() {
  java -XX:TieredStopAtLevel=1 -cp "$lib/*" kafka.tools.StorageTool format -t "$2" \
    -c "$1/server.properties" --ignore-formatted >>"$1/logs/format.log" 2>&1 \
    || die "formatting KRaft storage failed: see $1/logs/format.log"
}

# jvm_args DIR: the broker JVM's options.
jvm_args() {
  jvm=(-Xms256m "-Xmx${KAFKA_HEAP:-512m}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$here/kafka/log4j2.properties" "-Dkafka.logs.dir=$1/logs")
}

# spawn DIR: start the node's JVM in the background and record its PID.
spawn() {
  local dir=$1 jvm
  jvm_args "$dir"
  nohup java "${jvm[@]}" -cp "$lib/*" kafka.Kafka "$dir/server.properties" \
    >>"$dir/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
}

# run_foreground DIR: a single broker in DIR, configured and formatted on its first run, as
# the process itself: a container's entry point, whose log is the container's.
run_foreground() {
  local dir jvm
  dir=$(mkdir -p "$1" && cd "$1" && pwd)
  install
  if [ ! -f "$dir/server.properties" ]; then
    local cport=${KAFKA_CONTROLLER_PORT:-9093}
    configure "$dir" 1 "${KAFKA_PORT:-9092}" "$cport" "1@127.0.0.1:$cport" 1 1
    format "$dir" "$(java -XX:TieredStopAtLevel=1 -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null)"
  fi
  jvm_args "$dir"
  exec java "${jvm[@]}" -cp "$lib/*" kafka.Kafka "$dir/server.properties"
}

# ready DIR: wait until the node's broker port accepts connections (it opens once the broker
# is unfenced, so an open port means ready); the controller port opens earlier and is not probed.
ready() {
  local dir=$1 pid port
  pid=$(cat "$dir/kafka.pid")
  port=$(broker_port "$dir")
  local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
  until port_open "$port"; do
    kill -0 "$pid" 2>/dev/null || die "broker exited during start-up: see $dir/logs/stdout.log and server.log"
    [ $SECONDS -lt $deadline ] || { kill -TERM "$pid" 2>/dev/null || true; die "broker in $dir not ready after ${KAFKA_START_TIMEOUT:-90}s"; }
    sleep 0.2
  done
  echo "127.0.0.1:$port" >"$dir/address"
  log "broker $kafka_version ready at 127.0.0.1:$port (pid $pid, dir $dir)"
}

start() {
  local dir port cport
  dir=$(mkdir -p "$1" && cd "$1" && pwd)
  if running "$dir"; then cat "$dir/address"; return 0; fi
  install
  port=${KAFKA_PORT:-$(free_port)}
  cport=$(free_port)
  while [ "$cport" = "$port" ]; do cport=$(free_port); done
  configure "$dir" 1 "$port" "$cport" "1@127.0.0.1:$cport" 1 1
  format "$dir" "$(java -XX:TieredStopAtLevel=1 -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null)"
  spawn "$dir"
  ready "$dir"
  cat "$dir/address"
}

# start_secure DIR: a single broker whose client listener is SASL_SSL, with a CA and a broker
# certificate made for it (DIR/certs/ca.pem is the CA clients trust) and the user enricher
# (password enricher-secret) for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512.
start_secure() {
  local dir port iport cport
  dir=$(mkdir -p "$1" && cd "$1" && pwd)
  if running "$dir"; then cat "$dir/address"; return 0; fi
  install
  command -v openssl >/dev/null || die "openssl not found: install it (apt-get install openssl)"
  port=$(free_port); iport=$(free_port); cport=$(free_port)
  configure "$dir" 1 "$iport" "$cport" "1@127.0.0.1:$cport" 1 1
  local certs="$dir/certs"
  mkdir -p "$certs"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=enricher test CA" \
      -keyout "$certs/ca.key" -out "$certs/ca.pem"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$certs/broker.key" -out "$certs/broker.csr"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$certs/san.ext"
    openssl x509 -req -in "$certs/broker.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca.key" -CAcreateserial \
      -days 30 -extfile "$certs/san.ext" -out "$certs/broker.pem"
    openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -passout pass:broker-key-secret -in "$certs/broker.key" -out "$certs/broker-pkcs8.key"
  } >"$dir/logs/certs.log" 2>&1 || die "making certificates failed: see $dir/logs/certs.log"
  cat "$certs/broker-pkcs8.key" "$certs/broker.pem" "$certs/ca.pem" >"$certs/broker-keystore.pem"
  sed -i -e "s|^listeners=.*|listeners=SASL_SSL://127.0.0.1:$port,INTERNAL://127.0.0.1:$iport,CONTROLLER://127.0.0.1:$cport|" \
    -e "s|^advertised.listeners=.*|advertised.listeners=SASL_SSL://127.0.0.1:$port,INTERNAL://127.0.0.1:$iport|" \
    -e "s|^inter.broker.listener.name=.*|inter.broker.listener.name=INTERNAL|" \
    -e "s|^listener.security.protocol.map=.*|listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL|" \
    "$dir/server.properties"
  cat >>"$dir/server.properties" <<PROPS
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_enricher="enricher-secret";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$certs/broker-keystore.pem
ssl.key.password=broker-key-secret
ssl.client.auth=none
PROPS
  java -XX:TieredStopAtLevel=1 -cp "$lib/*" kafka.tools.StorageTool format \
    -t "$(java -XX:TieredStopAtLevel=1 -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
    -c "$dir/server.properties" --ignore-formatted \
    --add-scram 'SCRAM-SHA-256=[name=enricher,password=enricher-secret]' \
    --add-scram 'SCRAM-SHA-512=[name=enricher,password=enricher-secret]' >>"$dir/logs/format.log" 2>&1 \
    || die "formatting KRaft storage failed: see $dir/logs/format.log"
  spawn "$dir"
  ready "$dir"
  cat "$dir/address"
}

# start_proxied DIR PROXY_PORT: start's broker with a PROXIED listener advertised as the proxy's
# address. Kafka answers metadata with the addresses of the listener a request came in on, so a
# client bootstrapped through the proxy keeps every connection on it, while the PLAINTEXT
# listener serves everyone else directly.
start_proxied() {
  local dir proxy=$2 port cport pport
  dir=$(mkdir -p "$1" && cd "$1" && pwd)
  install
  port=$(free_port)
  cport=$(free_port)
  pport=$(free_port)
  configure "$dir" 1 "$port" "$cport" "1@127.0.0.1:$cport" 1 1
  sed -i -e "s|^listeners=.*|listeners=PLAINTEXT://127.0.0.1:$port,PROXIED://127.0.0.1:$pport,CONTROLLER://127.0.0.1:$cport|" \
    -e "s|^advertised.listeners=.*|advertised.listeners=PLAINTEXT://127.0.0.1:$port,PROXIED://127.0.0.1:$proxy|" \
    -e "s|^listener.security.protocol.map=.*|listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT|" \
    "$dir/server.properties"
  echo "127.0.0.1:$pport" >"$dir/proxied-upstream"
  format "$dir" "$(java -XX:TieredStopAtLevel=1 -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null)"
  spawn "$dir"
  ready "$dir"
  cat "$dir/address"
}

start_cluster() {
  local dir n=${2:-3} i voters="" id
  dir=$(mkdir -p "$1" && cd "$1" && pwd)
  install
  local ports=() cports=()
  for ((i = 1; i <= n; i++)); do
    ports[i]=$(free_port)
    cports[i]=$(free_port)
    voters+="${voters:+,}$i@127.0.0.1:${cports[i]}"
  done
  id=$(java -XX:TieredStopAtLevel=1 -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null)
  local rf=$((n < 3 ? n : 3)) isr=$((n < 3 ? 1 : 2))
  for ((i = 1; i <= n; i++)); do
    configure "$dir/node$i" "$i" "${ports[i]}" "${cports[i]}" "$voters" "$rf" "$isr"
    format "$dir/node$i" "$id"
  done
  # The brokers open their ports only once the controller quorum has formed: start every node
  # before waiting for any.
  for ((i = 1; i <= n; i++)); do spawn "$dir/node$i"; done
  local addrs=""
  for ((i = 1; i <= n; i++)); do
    ready "$dir/node$i"
    addrs+="${addrs:+,}$(cat "$dir/node$i/address")"
  done
  echo "$addrs" | tee "$dir/address"
}

# stop_nodes DIR...: SIGTERM every node (a controlled shutdown), then wait for all of them.
stop_nodes() {
  local d pids=() pid
  for d in "$@"; do
    [ -f "$d/kafka.pid" ] || continue
    pid=$(cat "$d/kafka.pid")
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" && pids+=("$pid")
  done
  local deadline=$((SECONDS + 30)) killed=""
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      if [ -z "$killed" ] && [ $SECONDS -ge $deadline ]; then
        log "brokers ignored SIGTERM for 30s: SIGKILL"
        for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
        killed=1
      fi
      sleep 0.2
    done
    log "broker $pid stopped"
  done
  for d in "$@"; do rm -f "$d/kafka.pid" "$d/address"; done
}

stop() {
  local dir=$1
  if [ -f "$dir/server.properties" ]; then
    stop_nodes "$dir"
  elif compgen -G "$dir/node*/server.properties" >/dev/null; then
    stop_nodes "$dir"/node*
    rm -f "$dir/address"
  else
    log "no broker in $dir"
  fi
}

restart() {
  local dir
  dir=$(cd "$1" && pwd) || die "no broker directory $1"
  [ -f "$dir/server.properties" ] || die "no broker was started in $dir"
  if running "$dir"; then cat "$dir/address"; return 0; fi
  install
  spawn "$dir"
  ready "$dir"
  cat "$dir/address"
}

cmd=${1:-}
dir=${2:-.kafka}
case "$cmd" in
  install) install; echo "$lib" ;;
  start) start "$dir" ;;
  start-secure) start_secure "$dir" ;;
  start-proxied) [ $# -ge 3 ] || die "start-proxied needs a DIR and a PROXY_PORT"; start_proxied "$dir" "$3" ;;
  start-cluster) [ $# -ge 2 ] || die "start-cluster needs a DIR"; start_cluster "$dir" "${3:-3}" ;;
  run) run_foreground "$dir" ;;
  stop) stop "$dir" ;;
  restart) restart "$dir" ;;
  status) running "$dir" && cat "$dir/address" || { log "not running"; exit 1; } ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
