#!/usr/bin/env bash
# spamflow's main job end to end, on a fresh machine: build, evaluate the shipped model on the
# shared corpus' test split (metrics table, JSON and a report with plots in out/), then classify
# a few test messages and print their labeled events.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
corpus=${CORPUS:-$root/../shared/corpora/spamassassin}
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust (rustup) first" >&2
  exit 1
fi
[ -f "$corpus/manifest.csv" ] || { echo "corpus not found at $corpus (set CORPUS)" >&2; exit 1; }

cargo build --release --quiet -p spamflow-cli
spamflow=target/release/spamflow
mkdir -p out
echo "== model"
"$spamflow" inspect
echo
echo "== evaluation on the test split"
"$spamflow" eval --manifest "$corpus/manifest.csv" --split test --json out/eval.json --report out/report
echo
echo "== a few labeled events (spamflow classify)"
mapfile -t sample < <(python3 - "$corpus" <<'PY'
import csv, os, sys
corpus = sys.argv[1]
rows = [r for r in csv.DictReader(open(os.path.join(corpus, "manifest.csv"))) if r["split"] == "test"]
picked = [r for r in rows if r["category"] in ("pharma", "mortgage", "software")][:3]
picked += [r for r in rows if r["label"] == "ham"][:2]
for r in picked:
    print(os.path.join(corpus, r["path"]))
PY
)
"$spamflow" classify "${sample[@]}"
echo
echo "metrics: out/eval.json, report: out/report/report.md"
