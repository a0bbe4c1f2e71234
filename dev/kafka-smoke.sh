#!/usr/bin/env bash
# End-to-end check of dev/kafka.sh against a throw-away broker: start (twice), status, topics with
# 6 partitions, console produce and consume, a transactional read-process-write copy read back
# with read_committed, stop, restart with the data kept, reset. Uses its own port and data folder
# (KAFKA_PORT, default 19192) so it does not disturb a broker already running on 9092.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kafka="$here/kafka.sh"

export KAFKA_PORT=${KAFKA_PORT:-19192}
KAFKA_DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/spamflow-kafka-smoke.XXXXXX")
export KAFKA_DATA_DIR
bootstrap="127.0.0.1:$KAFKA_PORT"
passed=0
failed=0

cleanup() {
  "$kafka" stop >/dev/null 2>&1 || true
  rm -rf "$KAFKA_DATA_DIR"
}
trap cleanup EXIT

check() {
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what"
    passed=$((passed + 1))
  else
    echo "FAILED: $what" >&2
    failed=$((failed + 1))
  fi
}

timed() {
  local start end
  start=$(date +%s%N)
  "$@"
  end=$(date +%s%N)
  echo "  ($(((end - start) / 1000000)) ms)"
}

# How many records a console consumer reads from a topic, stopping at the expected number.
count() {
  "$kafka" consume "$1" --max-messages "$2" --timeout-ms 15000 2>/dev/null | wc -l | tr -d ' '
}

not() { ! "$@"; }

check "status fails before start" not "$kafka" status
started=$(timed "$kafka" start 2>/dev/null)
echo "$started"
check "start prints the bootstrap address" test "$(head -n 1 <<<"$started")" = "$bootstrap"
check "status succeeds" "$kafka" status
check "a second start succeeds at once" test "$("$kafka" start 2>/dev/null)" = "$bootstrap"

check "create-topic with 6 partitions" "$kafka" create-topic smoke.in 6
check "create-topic again is a no-op" "$kafka" create-topic smoke.in 6
check "create-topic with another partition count fails" not "$kafka" create-topic smoke.in 3 2>/dev/null
check "the topic has 6 partitions" bash -c \
  "'$kafka' tool org.apache.kafka.tools.TopicCommand --bootstrap-server $bootstrap --describe --topic smoke.in | grep -q 'PartitionCount: 6'"

seq 1 60 | sed 's/.*/key-&:value-&/' |
  "$kafka" produce smoke.in --reader-property parse.key=true --reader-property key.separator=:
check "60 keyed records read back" test "$(count smoke.in 60)" = 60
check "records spread over the 6 partitions" bash -c \
  "'$kafka' consume smoke.in --max-messages 60 --timeout-ms 15000 --formatter-property print.partition=true 2>/dev/null | cut -f1 | sort -u | wc -l | grep -qx 6"

# Exactly once: copy partition 0 of tx.in to tx.out in transactions of 25 with random aborts; a
# read_committed consumer sees every record once, a read_uncommitted one sees the aborted too.
"$kafka" create-topic tx.in 1 >/dev/null
"$kafka" create-topic tx.out 1 >/dev/null
seq 1 500 | "$kafka" produce tx.in
check "transactional copy with random aborts" bash -c "'$kafka' tool \
  org.apache.kafka.tools.TransactionalMessageCopier --broker-list $bootstrap \
  --input-topic tx.in --input-partition 0 --output-topic tx.out --transactional-id smoke-tx \
  --consumer-group smoke-tx --transaction-size 25 --enable-random-aborts --use-group-metadata \
  >/dev/null"
committed=$("$kafka" consume tx.out --timeout-ms 8000 --isolation-level read_committed 2>/dev/null)
check "read_committed sees each of the 500 records once" \
  test "$(sort -un <<<"$committed" | wc -l)/$(wc -l <<<"$committed")" = 500/500

check "stop" timed "$kafka" stop
check "status fails after stop" not "$kafka" status
check "stop when stopped succeeds" "$kafka" stop
check "restart" timed "$kafka" start
check "topics and records survive a restart" test "$(count smoke.in 60)" = 60
check "reset deletes the data folder" bash -c "'$kafka' reset && test ! -e '$KAFKA_DATA_DIR'"

echo "kafka smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
