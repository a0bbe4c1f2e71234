#!/usr/bin/env bash
# spamflow's main job end to end on a fresh machine: build, start a local Apache Kafka broker,
# create the topics, replay the shared corpus' test split into mail.inbound, run `spamflow run`
# until the topic is drained, print throughput, verdict and category counts and a few labeled
# events, then stop everything. Set KAFKA_PORT (default 9092) or CORPUS to change those.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source dev/setup.sh
spamflow_setup

echo "== build"
cargo build --release --quiet -p spamflow-cli
spamflow=target/release/spamflow
"$spamflow" inspect | head -3

echo "== local Kafka"
KAFKA_PORT=${KAFKA_PORT:-9092}
spamflow_start_broker
for topic in mail.inbound:6 mail.labeled:6 mail.deadletter:1; do
  bash dev/kafka.sh create-topic "${topic%:*}" "${topic#*:}" >/dev/null
done
echo "broker $BROKERS; topics mail.inbound (6 partitions), mail.labeled (6), mail.deadletter (1)"

echo "== replay the test split into mail.inbound"
"$spamflow" replay --brokers "$BROKERS" --topic mail.inbound --manifest "$CORPUS/manifest.csv" --split test

echo "== spamflow run (exactly-once) until mail.inbound is drained"
RUST_LOG=warn "$spamflow" run --brokers "$BROKERS" --until-idle 5

echo "== labeled events (read_committed)"
mkdir -p out
"$spamflow" tail --brokers "$BROKERS" --topic mail.labeled --until-idle 3 > out/labeled.jsonl
python3 - out/labeled.jsonl <<'PY'
import collections, json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
verdicts = collections.Counter(e["verdict"] for e in events)
categories = collections.Counter(e["category"] for e in events if e["verdict"] == "spam")
print(f"{len(events)} events, {len(set(e['message_id'] for e in events))} distinct message ids")
print("verdicts:  " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
print("categories: " + ", ".join(f"{k} {v}" for k, v in categories.most_common()))
shown = [e for e in events if e["verdict"] == "spam"][:3] + [e for e in events if e["verdict"] == "ham"][:1]
for e in shown:
    print(json.dumps({k: e[k] for k in ("message_id", "verdict", "spam_probability", "category", "top_features")}))
PY
echo "all events: out/labeled.jsonl"
