#!/usr/bin/env bash
# Creates spamflow's topics on the Compose stack's broker; run by the one-shot `kafka-init`
# service (apache/kafka image) once the broker is healthy. Idempotent: existing topics are kept.
set -euo pipefail
bootstrap=${BOOTSTRAP_SERVER:-kafka:9092}
topics=/opt/kafka/bin/kafka-topics.sh

create() { # NAME PARTITIONS [--config k=v ...]
  local name=$1 partitions=$2
  shift 2
  "$topics" --bootstrap-server "$bootstrap" --create --if-not-exists \
    --topic "$name" --partitions "$partitions" --replication-factor 1 "$@"
}

create mail.inbound 6
create mail.labeled 6
create mail.deadletter 1
create mail.feedback 3
# category_topic = "mail.spam.{category}" in deploy/spamflow/run.toml
for category in pharma mortgage software stock adult fraud other; do
  create "mail.spam.$category" 1
done
"$topics" --bootstrap-server "$bootstrap" --list
