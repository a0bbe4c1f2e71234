#!/usr/bin/env bash
# Stream benchmark on a real local Kafka broker (started and stopped here):
#  1. throughput: the same replayed topic is drained by `spamflow run` and by a no-op relay
#     (`relay_only = true`: same batching, transactions and client settings, no parsing or
#     scoring), best of RUNS each, and the ratio is printed;
#  2. latency: `spamflow run` serves a topic fed at a fixed RATE; p50 / p99 of the end-to-end
#     latency (record timestamp to committed event) come from its /metrics histogram.
# Usage: dev/bench-stream.sh   (env: COPIES=3 copies of the corpus, RUNS=2, RATE=500, KAFKA_PORT=29092)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source dev/setup.sh
spamflow_setup
copies=${COPIES:-3}
runs=${RUNS:-2}
rate=${RATE:-500}

cargo build --release --quiet -p spamflow-cli
spamflow=$root/target/release/spamflow
KAFKA_PORT=${KAFKA_PORT:-29092}
spamflow_start_broker
work=$(mktemp -d)
trap 'bash dev/kafka.sh stop >/dev/null 2>&1 || true; rm -rf "$KAFKA_DATA_DIR" "$work"' EXIT
for topic in bench.in:6 bench.relayed:6 bench.labeled:6 bench.dead:1 latency.in:6 latency.labeled:6; do
  bash dev/kafka.sh create-topic "${topic%:*}" "${topic#*:}" >/dev/null
done
for _ in $(seq "$copies"); do
  "$spamflow" replay --brokers "$BROKERS" --topic bench.in --manifest "$CORPUS/manifest.csv" 2>/dev/null
done

config() { # name output relay_only [http]
  cat > "$work/$1.toml" <<TOML
brokers = "$BROKERS"
group = "$1-$RANDOM$RANDOM"
input_topics = ["${5:-bench.in}"]
output_topic = "$2"
dead_letter_topic = "bench.dead"
relay_only = $3
http_listen = "${4:-}"
TOML
  echo "$work/$1.toml"
}
throughput() { # config -> msgs/s
  RUST_LOG=warn "$spamflow" run --config "$1" --until-idle 3 | sed -E 's/.*\(([0-9]+) msgs\/s\).*/\1/'
}
best_relay=0; best_spamflow=0
for run in $(seq "$runs"); do
  t=$(throughput "$(config "relay$run" bench.relayed true)")
  ((t > best_relay)) && best_relay=$t
  t=$(throughput "$(config "score$run" bench.labeled false)")
  ((t > best_spamflow)) && best_spamflow=$t
done
messages=$((copies * $(($(wc -l < "$CORPUS/manifest.csv") - 1))))

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
latency_config=$(config latency latency.labeled false "127.0.0.1:$port" latency.in)
RUST_LOG=warn "$spamflow" run --config "$latency_config" --until-idle 15 > "$work/latency.out" &
service=$!
sleep 3
total=$(( rate * 10 ))
python3 - "$CORPUS" "$work/latency.csv" "$total" <<'PY'
import csv, os, sys
corpus, manifest, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [r for r in csv.DictReader(open(os.path.join(corpus, "manifest.csv"))) if r["split"] == "test"]
with open(manifest, "w") as f:
    f.write("path,label\n")
    for i in range(total):
        f.write(f"{os.path.join(corpus, rows[i % len(rows)]['path'])},{rows[i % len(rows)]['label']}\n")
PY
"$spamflow" replay --brokers "$BROKERS" --topic latency.in --rate "$rate" --manifest "$work/latency.csv" 2>/dev/null
for _ in $(seq 100); do
  body=$(curl -s "http://127.0.0.1:$port/metrics" || true)
  produced=$(echo "$body" | awk '/^spamflow_produced_total/ {s += $2} END {print s + 0}')
  ((produced >= total)) && break
  sleep 0.5
done
echo "$body" > "$work/metrics.txt"
wait "$service"

python3 - "$work/metrics.txt" "$messages" "$best_relay" "$best_spamflow" "$rate" <<'PY'
import re, sys
metrics, messages, relay, spamflow, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
buckets = []
for line in open(metrics):
    m = re.match(r'spamflow_end_to_end_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)', line)
    if m:
        buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
buckets.sort()
def quantile(q):
    total = buckets[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= q * total:
            if le == float("inf"):
                return lower_le
            return lower_le + (le - lower_le) * (q * total - lower_count) / max(count - lower_count, 1e-9)
        lower_le, lower_count = le, count
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown cpu")
print(f"machine: {cpu}, {sum(1 for l in open('/proc/cpuinfo') if l.startswith('processor'))} cores shared with the broker")
print(f"throughput over {messages} replayed messages, best of runs:")
print(f"  no-op relay      {relay:8.0f} msgs/s")
print(f"  spamflow run     {spamflow:8.0f} msgs/s")
print(f"  ratio spamflow/relay: {spamflow / relay:.2f}")
print(f"end-to-end latency at {rate} msgs/s ({int(buckets[-1][1])} messages, from /metrics buckets):")
print(f"  p50 {1000 * quantile(0.5):.1f} ms   p99 {1000 * quantile(0.99):.1f} ms")
PY
