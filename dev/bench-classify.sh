#!/usr/bin/env bash
# Classify benchmark, one thread each: spamflow against bogofilter on the same files in the same
# run. bogofilter is trained on the train split (`-s -b` / `-n -b`), then both classify every
# message of the test split from file paths (bogofilter in bulk mode `-b`, spamflow with
# `classify --threads 1`); whole-command wall time, best of RUNS. Also prints both filters'
# (1 - ROC AUC) on the test split, and the cost of one message per process, as a mail delivery
# agent that pipes each message to a filter pays it (the first PER_MESSAGE test files, default
# 100, each classified by its own process: `bogofilter -v -I FILE`, `spamflow classify FILE`),
# and spamflow's parse-through-score throughput alone (`eval --threads 1`: messages in memory,
# no start-up or file reading; bogofilter has no such figure, so its ratio is against
# bogofilter's whole command). Usage: dev/bench-classify.sh [MODEL]; SPAMFLOW_BIN runs another
# spamflow build (default: target/release/spamflow, built first), e.g. to compare two builds'
# serving code on the same model.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${CORPUS:-$root/../shared/corpora/spamassassin}
model=${1:-$root/models/default.spamflow}
runs=${RUNS:-3}

if ! command -v bogofilter >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bogofilter >/dev/null
fi
if [[ -n ${SPAMFLOW_BIN:-} ]]; then
  spamflow=$(realpath "$SPAMFLOW_BIN")
else
  cargo build --release --quiet -p spamflow-cli
  spamflow=$root/target/release/spamflow
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$corpus" "$work" <<'PY'
import csv, os, sys
corpus, work = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(os.path.join(corpus, "manifest.csv"))))
def write(name, keep):
    with open(os.path.join(work, name), "w") as f:
        for r in rows:
            if keep(r):
                f.write(os.path.join(corpus, r["path"]) + "\n")
write("train_spam", lambda r: r["split"] == "train" and r["label"] == "spam")
write("train_ham", lambda r: r["split"] == "train" and r["label"] == "ham")
write("test", lambda r: r["split"] == "test")
write("test_spam", lambda r: r["split"] == "test" and r["label"] == "spam")
PY
bogofilter -d "$work/bogo" -s -b < "$work/train_spam"
bogofilter -d "$work/bogo" -n -b < "$work/train_ham"
messages=$(wc -l < "$work/test")
mapfile -t files < "$work/test"

seconds() { local start end; start=$(date +%s%N); "$@"; end=$(date +%s%N); echo $(( (end - start) / 1000 )); }
best_bogo=0; best_spamflow=0
for _ in $(seq "$runs"); do
  t=$(seconds sh -c "bogofilter -d '$work/bogo' -v -b < '$work/test' > '$work/bogo.out'")
  if (( best_bogo == 0 || t < best_bogo )); then best_bogo=$t; fi
  t=$(seconds sh -c "'$spamflow' classify --threads 1 --model '$model' \"\$@\" > '$work/spamflow.out'" sh "${files[@]}")
  if (( best_spamflow == 0 || t < best_spamflow )); then best_spamflow=$t; fi
done

# spamflow's own parse-through-score figure: `eval --threads 1` times classification alone,
# with the messages already in memory (no start-up, no file reading, no output).
best_eval=0
for _ in $(seq "$runs"); do
  "$spamflow" eval --model "$model" --manifest "$corpus/manifest.csv" --split test --threads 1 \
    --json "$work/eval.json" >/dev/null
  rate=$(python3 -c 'import json, sys; print(int(json.load(open(sys.argv[1]))["throughput"]["msgs_per_sec"]))' "$work/eval.json")
  if (( rate > best_eval )); then best_eval=$rate; fi
done

single=("${files[@]:0:${PER_MESSAGE:-100}}")
best_bogo_single=0; best_spamflow_single=0
for _ in $(seq "$runs"); do
  t=$(seconds sh -c 'db=$1; shift; for f; do bogofilter -d "$db" -v -I "$f" >/dev/null || true; done' sh "$work/bogo" "${single[@]}")
  if (( best_bogo_single == 0 || t < best_bogo_single )); then best_bogo_single=$t; fi
  t=$(seconds sh -c 'bin=$1; model=$2; shift 2; for f; do "$bin" classify --threads 1 --model "$model" "$f" >/dev/null; done' sh "$spamflow" "$model" "${single[@]}")
  if (( best_spamflow_single == 0 || t < best_spamflow_single )); then best_spamflow_single=$t; fi
done

python3 - "$work" "$messages" "$best_bogo" "$best_spamflow" "${#single[@]}" "$best_bogo_single" "$best_spamflow_single" "$best_eval" <<'PY'
import json, re, sys
work, messages, bogo_us, spamflow_us = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
single, bogo_single_us, spamflow_single_us = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
eval_rate = int(sys.argv[8])
spam = set(open(f"{work}/test_spam").read().split())
def auc(scored):
    pos = [s for s, l in scored if l]; neg = [s for s, l in scored if not l]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))
bogo = []
for line in open(f"{work}/bogo.out"):
    path, rest = line.split(" ", 1)
    bogo.append((float(re.search(r"spamicity=([0-9.]+)", rest).group(1)), path in spam))
sf = []
for line in open(f"{work}/spamflow.out"):
    v = json.loads(line)
    sf.append((v["spam_probability"], v["id"] in spam))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown cpu")
b = messages / (bogo_us / 1e6); s = messages / (spamflow_us / 1e6)
print(f"machine: {cpu}, one thread each, {messages} test-split messages, best of runs")
print(f"bogofilter -b        {b:8.0f} msgs/s   1-AUC {100 * (1 - auc(bogo)):.4f} %")
print(f"spamflow classify    {s:8.0f} msgs/s   1-AUC {100 * (1 - auc(sf)):.4f} %")
print(f"throughput ratio spamflow/bogofilter: {s / b:.2f}x")
print(f"spamflow parse through score only (eval --threads 1, messages in memory): {eval_rate} msgs/s,"
      f" {eval_rate / b:.2f}x bogofilter's whole command")
print(f"one message per process ({single} messages, best of runs, per message):"
      f" bogofilter {bogo_single_us / single / 1000:.1f} ms, spamflow {spamflow_single_us / single / 1000:.1f} ms")
PY
