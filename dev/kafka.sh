#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, combined broker + controller) on 127.0.0.1 for
# development and tests, without Docker: the official broker jars come from Maven Central through
# dev/kafka/pom.xml. Needs Java 17+ and Maven.
#
#   dev/kafka.sh start                          format (first time), start, wait until it serves
#   dev/kafka.sh stop                           graceful shutdown, waits until the process is gone
#   dev/kafka.sh status                         exit 0 if the broker runs and answers, 1 if not
#   dev/kafka.sh create-topic NAME PARTITIONS [--config k=v ...]
#                                               create a topic (replication factor 1) unless it exists
#   dev/kafka.sh produce TOPIC [ARGS...]        console producer: one record per stdin line
#   dev/kafka.sh consume TOPIC [ARGS...]        console consumer from the beginning (stdout)
#   dev/kafka.sh tool MAIN_CLASS [ARGS...]      run any Kafka tool class against the jars
#   dev/kafka.sh reset                          stop and delete the data folder
#   dev/kafka.sh classpath                      resolve the jars and print the classpath
#
# Environment:
#   KAFKA_PORT             client listener port (9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener port (KAFKA_PORT + 1)
#   KAFKA_DATA_DIR         data, logs, pid file (dev/kafka/data/<KAFKA_PORT>)
#   KAFKA_START_TIMEOUT    seconds start waits for the broker to serve (90)
#   KAFKA_STOP_TIMEOUT     seconds stop waits before it kills the process (30)
#   KAFKA_HEAP_OPTS        broker heap (-Xms256m -Xmx512m)
#   KAFKA_JVM_OPTS         extra JVM options for the broker
#   KAFKA_EXTRA_CONFIG     extra server.properties lines (key=value, newline separated)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project="$here/kafka"
lib="$project/target/lib"

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

check_port() {
  if ! [[ $1 =~ ^[1-9][0-9]{0,4}$ ]] || (($1 > 65535)); then
    die "not a port: $1"
  fi
}

port=${KAFKA_PORT:-9092}
check_port "$port"
cport=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
check_port "$cport"
data=$(realpath -m "${KAFKA_DATA_DIR:-$project/data/$port}")
start_timeout=${KAFKA_START_TIMEOUT:-90}
stop_timeout=${KAFKA_STOP_TIMEOUT:-30}
bootstrap="127.0.0.1:$port"

pidfile="$data/kafka.pid"
logdir="$data/logs"
config="$data/server.properties"

[ "$port" != "$cport" ] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"

# --- jars -------------------------------------------------------------------------------------

# Copies the broker and tool jars into dev/kafka/target/lib, once per version of the pom. Maven
# runs offline first (everything already in ~/.m2) and goes to the network only if that fails.
ensure_jars() {
  command -v java >/dev/null || die "java is missing: install a JDK 17 or newer"
  local stamp
  stamp=$(sha256sum "$project/pom.xml" | cut -d' ' -f1)
  if [ -f "$lib/.stamp" ] && [ "$(cat "$lib/.stamp")" = "$stamp" ]; then
    return
  fi
  command -v mvn >/dev/null || die "mvn is missing: install Maven to resolve the Kafka jars"
  local version
  version=$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1)
  [ "${version:-0}" -ge 17 ] 2>/dev/null || die "Kafka 4 needs Java 17 or newer; java is ${version:-unknown}"
  mkdir -p "$project/target"
  # One resolver at a time; whoever waited finds the jars in place.
  exec 8>"$project/target/.resolve.lock"
  if command -v flock >/dev/null; then
    flock -w 600 8 || die "another run holds $project/target/.resolve.lock"
  fi
  if [ -f "$lib/.stamp" ] && [ "$(cat "$lib/.stamp")" = "$stamp" ]; then
    exec 8>&-
    return
  fi
  local tmp="$project/target/lib.tmp.$$"
  rm -rf "$tmp"
  echo "kafka.sh: resolving the Kafka jars with Maven (first run only)" >&2
  local args=(-B -q -Dstyle.color=never -f "$project/pom.xml" dependency:copy-dependencies
    -DincludeScope=runtime "-DoutputDirectory=$tmp")
  if ! mvn -o "${args[@]}" >/dev/null 2>&1; then
    rm -rf "$tmp"
    mvn -ntp "${args[@]}" >&2 || die "Maven could not resolve the Kafka jars (see above)"
  fi
  echo "$stamp" >"$tmp/.stamp"
  rm -rf "$lib"
  mv "$tmp" "$lib"
  exec 8>&-
}

classpath() {
  echo "$lib/*"
}

# JVM warnings go to stderr (never into a tool's stdout); class-data-sharing chatter is dropped.
jvm_log=(-Xlog:disable -Xlog:all=warning:stderr "-Xlog:cds*=off:stderr")

# Class-data sharing (AppCDS): the first broker (or tool) run records the classes it loaded into
# an archive when it exits; later runs map that archive and start about twice as fast. Archives
# live beside the jars and are named after the java binary, so a new JDK records new ones; an
# archive the JVM cannot use is ignored. Prints the archive's path.
cds_archive() {
  local java_bin
  java_bin=$(readlink -f "$(command -v java)")
  mkdir -p "$lib/cds"
  echo "$lib/cds/$1-$(printf '%s %s' "$java_bin" "$(stat -c %Y "$java_bin")" | sha256sum | cut -c1-12).jsa"
}

# The JVM option that uses an archive if there is one, or records it into ARCHIVE.SUFFIX.tmp.
cds_option() {
  if [ -f "$1" ]; then
    echo "-XX:SharedArchiveFile=$1"
  else
    echo "-XX:ArchiveClassesAtExit=$1.$2.tmp"
  fi
}

# Moves a recorded archive into place once the JVM that wrote it has exited.
cds_keep() {
  if [ -s "$1.$2.tmp" ]; then
    mv -f "$1.$2.tmp" "$1"
  fi
  rm -f "$1.$2.tmp"
}

# Runs a Kafka command-line tool class: quiet logging, small heap, quick JVM start.
tool() {
  local main=$1 archive rc=0
  shift
  archive=$(cds_archive tools)
  java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${jvm_log[@]}" \
    "$(cds_option "$archive" $$)" -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
    "-Dlog4j2.configurationFile=$project/log4j2-tools.properties" \
    -cp "$(classpath)" "$main" "$@" || rc=$?
  cds_keep "$archive" $$
  return "$rc"
}

# --- process state ----------------------------------------------------------------------------

# The pid of the broker started from this data folder, if it still runs.
running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # Guard against pid reuse: the process must be this data folder's broker.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $config" || return 1
  echo "$pid"
}

# True if a Kafka broker answers on the port: sends an ApiVersions v0 request (api key 18,
# correlation id 42, empty client id) and expects correlation id 42 with error code 0 back. The
# broker opens its listener for requests only once it is registered and unfenced.
answers() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x00" >&3
    reply=$(head -c 10 <&3 | od -An -tx1 | tr -d " \n")
    [ "${reply:8:12}" = "0000002a0000" ]
  ' _ "$port" 2>/dev/null
}

# True if anything accepts TCP connections on the port.
port_taken() {
  # shellcheck disable=SC2016 # expanded by the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

require_broker() {
  answers || die "no Kafka broker answers on $bootstrap (run dev/kafka.sh start)"
}

# --- commands ---------------------------------------------------------------------------------

write_config() {
  cat >"$config.tmp" <<EOF
# Written by dev/kafka.sh on every start; edit KAFKA_* variables instead.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/kafka-logs
# One node: every internal topic has one replica, and transactions need min.isr 1.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=1
# Topics are created explicitly (create-topic), so a misspelt topic name is an error.
auto.create.topics.enable=false
# Consumer groups start at once instead of waiting for more members.
group.initial.rebalance.delay.ms=0
# A raw mail may be up to 10 MiB (spamflow's max_message_bytes) plus an envelope.
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
# Small machine: fewer threads; faster registration and unfencing at start.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
log.retention.hours=168
${KAFKA_EXTRA_CONFIG:-}
EOF
  mv "$config.tmp" "$config"
}

cmd_start() {
  mkdir -p "$data" "$logdir"
  # One start at a time per data folder.
  exec 9>"$data/.lock"
  if command -v flock >/dev/null; then
    flock -w "$start_timeout" 9 || die "another start holds $data/.lock"
  fi

  local pid
  if pid=$(running_pid); then
    if answers; then
      echo "kafka.sh: already running (pid $pid)" >&2
      echo "$bootstrap"
      return
    fi
    echo "kafka.sh: broker pid $pid runs but does not answer yet; waiting" >&2
  else
    if answers; then
      echo "kafka.sh: a Kafka broker not started from $data already answers on $bootstrap; using it" >&2
      echo "$bootstrap"
      return
    fi
    for p in "$port" "$cport"; do
      if port_taken "$p"; then
        die "port $p is taken by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
      fi
    done
    ensure_jars
    write_config
    if [ ! -f "$data/kafka-logs/meta.properties" ]; then
      # First start: format the storage with a fresh cluster id.
      local cluster_id
      cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
      tool kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$config" \
        --ignore-formatted >"$logdir/format.log" 2>&1 ||
        die "formatting $data/kafka-logs failed: see $logdir/format.log"
    fi
    rm -f "$pidfile"
    local archive
    archive=$(cds_archive broker)
    rm -f "$archive.$port.tmp"
    # setsid: the broker outlives the shell that started it and ignores its Ctrl-C.
    # shellcheck disable=SC2086
    setsid java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
      "${jvm_log[@]}" "$(cds_option "$archive" "$port")" -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
      "-Dkafka.logs.dir=$logdir" "-Dlog4j2.configurationFile=$project/log4j2-server.properties" \
      ${KAFKA_JVM_OPTS:-} \
      -cp "$(classpath)" kafka.Kafka "$config" \
      </dev/null >"$logdir/kafka.out" 2>&1 8>&- 9>&- &
    pid=$!
    echo "$pid" >"$pidfile"
  fi

  local waited=0
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      tail -n 20 "$logdir/kafka.out" >&2 || true
      die "the broker exited during start: see $logdir/server.log and $logdir/kafka.out"
    fi
    if ((waited >= start_timeout * 5)); then
      die "the broker (pid $pid) did not answer on $bootstrap within ${start_timeout}s: see $logdir/server.log"
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  echo "kafka.sh: broker pid $pid serves $bootstrap (data $data)" >&2
  echo "$bootstrap"
}

cmd_stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pidfile"
    if answers; then
      echo "kafka.sh: a broker answers on $bootstrap but was not started from $data; left alone" >&2
    else
      echo "kafka.sh: not running" >&2
    fi
    return
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local waited=0 killed=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= stop_timeout * 5)); then
      echo "kafka.sh: pid $pid did not stop within ${stop_timeout}s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      killed=1
      break
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  rm -f "$pidfile"
  # A broker that exited normally has written its class-data archive on the way out.
  local archive
  archive=$(cds_archive broker)
  if ((killed)); then
    rm -f "$archive.$port.tmp"
  else
    cds_keep "$archive" "$port"
  fi
  echo "kafka.sh: stopped (pid $pid)" >&2
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    if answers; then
      echo "running: pid $pid, $bootstrap, data $data"
      return 0
    fi
    echo "starting or stuck: pid $pid does not answer on $bootstrap (see $logdir/server.log)"
    return 1
  fi
  if answers; then
    echo "running: a broker not started from $data answers on $bootstrap"
    return 0
  fi
  echo "not running ($bootstrap)"
  return 1
}

# TopicCommand against this broker, without its warning that '.' and '_' in topic names can
# collide in metric names (spamflow's topic names use '.' only).
topics() {
  local out rc=0
  out=$(tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" "$@") || rc=$?
  if [ -n "$out" ]; then
    grep -v "^WARNING: Due to limitations in metric names" <<<"$out" || true
  fi
  return "$rc"
}

cmd_create_topic() {
  [ $# -ge 2 ] || die "usage: kafka.sh create-topic NAME PARTITIONS [--config k=v ...]"
  local name=$1 partitions=$2
  shift 2
  [[ $partitions =~ ^[1-9][0-9]*$ ]] || die "not a partition count: $partitions"
  require_broker
  ensure_jars
  local out
  out=$(topics --create --if-not-exists --topic "$name" --partitions "$partitions" \
    --replication-factor 1 "$@") || die "creating topic $name failed"
  if grep -q '^Created topic' <<<"$out"; then
    echo "$out"
    return
  fi
  # It existed already: say so, and refuse a different partition count.
  local have
  have=$(topics --describe --topic "$name" | grep -Eo 'PartitionCount: *[0-9]+' |
    grep -Eo '[0-9]+$' || true)
  if [ "$have" != "$partitions" ]; then
    die "topic $name exists with ${have:-an unknown number of} partitions, not $partitions"
  fi
  echo "Topic $name exists ($have partitions)."
}

cmd_reset() {
  cmd_stop
  if [ -d "$data" ]; then
    # Only a folder this script made (it holds our server.properties) is deleted.
    if [ -f "$config" ] || [ ! -d "$data/kafka-logs" ]; then
      rm -rf "$data"
      echo "kafka.sh: deleted $data" >&2
    else
      die "$data does not look like a dev/kafka.sh data folder; not deleting it"
    fi
  fi
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  create-topic) cmd_create_topic "$@" ;;
  produce)
    [ $# -ge 1 ] || die "usage: kafka.sh produce TOPIC [ARGS...]"
    require_broker
    ensure_jars
    topic=$1
    shift
    tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$bootstrap" --topic "$topic" "$@"
    ;;
  consume)
    [ $# -ge 1 ] || die "usage: kafka.sh consume TOPIC [ARGS...]"
    require_broker
    ensure_jars
    topic=$1
    shift
    tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$bootstrap" \
      --topic "$topic" --from-beginning "$@"
    ;;
  tool)
    [ $# -ge 1 ] || die "usage: kafka.sh tool MAIN_CLASS [ARGS...]"
    ensure_jars
    tool "$@"
    ;;
  reset) cmd_reset ;;
  classpath)
    ensure_jars
    classpath
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
