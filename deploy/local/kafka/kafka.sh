#!/usr/bin/env bash
# Local single-node Apache Kafka 4.x (KRaft) for development and CI, without Docker.
# The broker's classpath is assembled from Maven Central by pom.xml (see DESIGN.md section 8).
#
# Usage: deploy/local/kafka/kafka.sh <command>
#   install   copy the broker jars into deploy/local/kafka/lib (skipped when already complete)
#   start     install, render config, format storage (first time), start in the background,
#             wait until the broker is ready, write <data dir>/kafka.pid
#   stop      stop the broker started by `start` (SIGTERM, SIGKILL after KAFKA_STOP_TIMEOUT)
#   status    print whether the broker is running (exit 0 running, 3 stopped)
#   restart   stop then start
#   logs      follow <data dir>/logs/server.log
#   prepare   render config and format storage only
#   run       prepare, then run the broker in the foreground (exec java; used by LocalKafkaBroker)
#
# Environment:
#   KAFKA_PORT             PLAINTEXT listener on 127.0.0.1       (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener on 127.0.0.1 (default 9093)
#   KAFKA_DATA_DIR         config, data, logs, pid file          (default <repo>/.local/kafka)
#   KAFKA_HEAP             JVM heap flags                        (default "-Xmx512m -Xms256m")
#   KAFKA_JVM_OPTS         extra JVM flags                       (default: G1, short pauses)
#   KAFKA_START_TIMEOUT    seconds `start` waits for readiness   (default 90)
#   KAFKA_STOP_TIMEOUT     seconds `stop` waits before SIGKILL   (default 30)
#   KAFKA_EXTRA_CONFIG     properties file appended to the rendered config; its keys override the
#                          template's (e.g. TLS/SASL listeners, see voiceticket_sandbox.kafka_broker)
#   KAFKA_SCRAM_FILE       file of SCRAM credentials, one `SCRAM-SHA-512=[name=...,password=...]` a line,
#                          written into the metadata when the storage is first formatted (--add-scram)
#   JAVA, MVN              java / mvn executables                (default: from PATH)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../.." && pwd)"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/.local/kafka}"
[[ "$KAFKA_DATA_DIR" == /* ]] || KAFKA_DATA_DIR="$PWD/$KAFKA_DATA_DIR"
KAFKA_HEAP="${KAFKA_HEAP:--Xmx512m -Xms256m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"

LIB_DIR="$HERE/lib"
STAMP="$LIB_DIR/.installed"
CONFIG="$KAFKA_DATA_DIR/server.properties"
STORAGE_DIR="$KAFKA_DATA_DIR/data"
LOG_DIR="$KAFKA_DATA_DIR/logs"
PID_FILE="$KAFKA_DATA_DIR/kafka.pid"
CLUSTER_ID_FILE="$KAFKA_DATA_DIR/cluster.id"
# Logged by kafka.server.KafkaRaftServer once the broker is unfenced and its listeners accept requests.
READY_MARKER="Kafka Server started"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

check_port() {
  [[ "$2" =~ ^[0-9]+$ ]] && (( $2 > 0 && $2 < 65536 )) || die "$1 must be a TCP port, got '$2'"
}

# ---------------------------------------------------------------------------------- install
pom_hash() { sha256sum "$HERE/pom.xml" | cut -d' ' -f1; }

# Complete = the stamp names the current pom.xml's hash and every jar it lists is present.
installed() {
  [[ -f "$STAMP" ]] || return 1
  local hash jar
  { read -r hash || return 1
    [[ "$hash" == "$(pom_hash)" ]] || return 1
    while read -r jar; do [[ -f "$LIB_DIR/$jar" ]] || return 1; done
  } <"$STAMP"
}

cmd_install() {
  installed && return 0
  command -v "$MVN" >/dev/null || die "mvn not found (needed once to fetch the broker jars)"
  # Serialise concurrent installs (parallel test workers) by locking pom.xml itself;
  # re-check under the lock.
  exec 8<"$HERE/pom.xml"
  flock 8
  if installed; then exec 8<&-; return 0; fi
  log "installing Kafka jars from Maven Central into $LIB_DIR"
  local tmp="$HERE/target/lib.tmp.$$"  # target/ is gitignored
  rm -rf "$tmp"
  mkdir -p "$HERE/target"
  local mvn_log="$HERE/target/mvn.log"
  if ! "$MVN" -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DoutputDirectory="$tmp" \
       >"$mvn_log" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$mvn_log" >&2  # Maven 3.8 emits ANSI codes even with -B
    rm -rf "$tmp"; die "mvn dependency:copy-dependencies failed (log: $mvn_log)"
  fi
  rm -f "$mvn_log"
  { pom_hash; (cd "$tmp" && ls -1 -- *.jar); } >"$tmp/.installed"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
  rmdir "$HERE/target" 2>/dev/null || true
  exec 8<&-
  log "installed $(($(wc -l <"$STAMP") - 1)) jars"
}

# ---------------------------------------------------------------------------------- prepare
random_cluster_id() {  # a Kafka Uuid: 16 random bytes, base64url without padding
  head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

render_config() {
  mkdir -p "$STORAGE_DIR" "$LOG_DIR"
  local esc_dirs
  esc_dirs="$(printf '%s' "$STORAGE_DIR" | sed 's/[\\&|]/\\&/g')"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@KAFKA_LOG_DIRS@|$esc_dirs|g" \
      "$HERE/server.properties.template" >"$CONFIG.tmp"
  if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
    [[ -f "$KAFKA_EXTRA_CONFIG" ]] || die "KAFKA_EXTRA_CONFIG: no such file $KAFKA_EXTRA_CONFIG"
    { echo; echo "# --- from KAFKA_EXTRA_CONFIG ($KAFKA_EXTRA_CONFIG)"; cat "$KAFKA_EXTRA_CONFIG"; } >>"$CONFIG.tmp"
  fi
  mv "$CONFIG.tmp" "$CONFIG"
}

java_base() {  # JVM arguments for the broker (word splitting of the *_OPTS variables is intended)
  # shellcheck disable=SC2206
  JAVA_ARGS=($KAFKA_HEAP $KAFKA_JVM_OPTS
    -Djava.awt.headless=true
    -Dkafka.logs.dir="$LOG_DIR"
    -Dlog4j2.configurationFile="$HERE/log4j2.xml"
    -cp "$LIB_DIR/*")
}

format_storage() {
  [[ -f "$STORAGE_DIR/meta.properties" ]] && return 0
  [[ -s "$CLUSTER_ID_FILE" ]] || random_cluster_id >"$CLUSTER_ID_FILE"
  local scram=() line
  if [[ -n "${KAFKA_SCRAM_FILE:-}" ]]; then
    [[ -f "$KAFKA_SCRAM_FILE" ]] || die "KAFKA_SCRAM_FILE: no such file $KAFKA_SCRAM_FILE"
    while IFS= read -r line || [[ -n "$line" ]]; do
      if [[ -n "$line" ]]; then scram+=(--add-scram "$line"); fi
    done <"$KAFKA_SCRAM_FILE"
  fi
  # A short-lived tool: C1 only and serial GC halve its start-up (~1.4 s instead of ~2.8 s).
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$HERE/log4j2.xml" -cp "$LIB_DIR/*" \
    kafka.tools.StorageTool format \
    --cluster-id="$(cat "$CLUSTER_ID_FILE")" --config "$CONFIG" --ignore-formatted "${scram[@]}" \
    >>"$LOG_DIR/format.log" 2>&1 \
    || { tail -n 20 "$LOG_DIR/format.log" >&2; die "storage format failed (see $LOG_DIR/format.log)"; }
}

cmd_prepare() {
  check_port KAFKA_PORT "$KAFKA_PORT"
  check_port KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
  [[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
  command -v "$JAVA" >/dev/null || die "java not found (Kafka 4.x needs Java 17+)"
  installed || die "Kafka jars are not installed; run: $0 install"
  mkdir -p "$KAFKA_DATA_DIR"
  render_config
  format_storage
}

# ---------------------------------------------------------------------------------- run/start
cmd_run() {  # foreground; the pid of this shell becomes the java pid through exec
  cmd_prepare
  echo $$ >"$PID_FILE"
  java_base
  exec "$JAVA" "${JAVA_ARGS[@]}" kafka.Kafka "$CONFIG"
}

# pid of the broker for this data dir, if it is alive and really is that broker
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"kafka.Kafka $CONFIG"* ]] || return 1
  echo "$pid"
}

show_new_logs() {  # the tail of what this start wrote to the logs
  tail -n 20 "$LOG_DIR/console.log" >&2 2>/dev/null || true
  tail -c "+$(($1 + 1))" "$LOG_DIR/server.log" 2>/dev/null | tail -n 30 >&2 || true
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid, 127.0.0.1:$KAFKA_PORT, data $KAFKA_DATA_DIR)"
    return 0
  fi
  rm -f "$PID_FILE"
  port_open "$KAFKA_PORT" && die "127.0.0.1:$KAFKA_PORT is already in use by another process"
  port_open "$KAFKA_CONTROLLER_PORT" && die "127.0.0.1:$KAFKA_CONTROLLER_PORT is already in use"
  cmd_install
  cmd_prepare

  # Only log lines written by this start count towards readiness.
  local server_log="$LOG_DIR/server.log" offset=0
  [[ -f "$server_log" ]] && offset="$(stat -c %s "$server_log")"

  local t0=$SECONDS
  # Own session: Ctrl-C in the calling terminal does not reach the broker.
  setsid "$HERE/kafka.sh" run </dev/null >"$LOG_DIR/console.log" 2>&1 &
  local launcher=$!

  while :; do
    if pid="$(running_pid)" && port_open "$KAFKA_PORT" \
       && grep -qF "$READY_MARKER" < <(tail -c "+$((offset + 1))" "$server_log" 2>/dev/null); then
      log "ready on 127.0.0.1:$KAFKA_PORT (pid $pid, $((SECONDS - t0))s, data $KAFKA_DATA_DIR)"
      return 0
    fi
    if ! kill -0 "$launcher" 2>/dev/null && ! running_pid >/dev/null; then
      show_new_logs "$offset"
      die "broker exited during start-up (logs in $LOG_DIR)"
    fi
    if (( SECONDS - t0 >= KAFKA_START_TIMEOUT )); then
      show_new_logs "$offset"
      cmd_stop || true
      kill -KILL -- "-$launcher" 2>/dev/null || true  # its session, in case java never started
      die "broker not ready after ${KAFKA_START_TIMEOUT}s (logs in $LOG_DIR)"
    fi
    sleep 0.3
  done
}

# ---------------------------------------------------------------------------------- stop/status
cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
      log "pid $pid did not stop within ${KAFKA_STOP_TIMEOUT}s; killing"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  log "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    local port state="port closed"
    # the port this broker was started with, whatever KAFKA_PORT says now
    port="$(sed -n 's/^advertised\.listeners=.*:\([0-9]*\)$/\1/p' "$CONFIG")"
    port_open "${port:=$KAFKA_PORT}" && state="accepting connections"
    echo "running: pid $pid, 127.0.0.1:$port ($state), data $KAFKA_DATA_DIR"
    return 0
  fi
  echo "stopped (data $KAFKA_DATA_DIR)"
  return 3
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

case "${1:-}" in
  install) cmd_install ;;
  prepare) cmd_install; cmd_prepare ;;
  run) cmd_install; cmd_run ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  logs) exec tail -F "$LOG_DIR/server.log" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
