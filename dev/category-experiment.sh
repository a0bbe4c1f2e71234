#!/usr/bin/env bash
# Category-head experiment: how well does each training-options file name the kind of spam, on
# later mail and by cross-validation? For each file given (`default` names the built-in
# defaults) a model is trained on the train rows of the older subsets (spam, easy_ham) and
# evaluated on the later subsets (spam_2, easy_ham_2; train rows are the yardstick, test rows
# are printed too), then trained on the whole train split (its cross-validated category
# macro-F1) and evaluated on the test split. Every run reuses the shipped model's subword
# tokenizer, so runs differ only by their options.
#
#   dev/category-experiment.sh default my-options.toml ...
#
# CORPUS (default ../shared/corpora/spamassassin), SPAMFLOW_BIN (default target/release/spamflow,
# built if missing), THREADS (default: every core).
set -euo pipefail
cd "$(dirname "$0")/.."
source dev/corpus-experiment.sh
(($# > 0)) || set -- default
periods

categories() { # categories LABEL JSON
    python3 - "$@" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
c = json.load(open(path))["categories"]
f1 = "  ".join(f"{name} {m['f1']:.3f}" for name, m in c["per_class"].items())
print(f"  {label:<22} macro-F1 {c['macro_f1']:.3f}  pharma/mortgage/software {c['macro_f1_pharma_mortgage_software']:.3f}  ({f1})")
PY
}

for options in "$@"; do
    flags=(--tokenizer models/default.spamflow --threads "$THREADS")
    [[ $options == default ]] || flags+=(--options "$options")
    echo "== $options"
    "$BIN" train --manifest "$WORK/older.csv" --out "$WORK/older.spamflow" "${flags[@]}" \
        2>&1 | grep "category macro-F1" | sed 's/.*CV category/  older subsets, 5-fold CV: category/'
    for split in train test; do
        "$BIN" eval --model "$WORK/older.spamflow" --manifest "$WORK/later.csv" --split "$split" \
            --json "$WORK/e.json" --threads "$THREADS" >/dev/null
        categories "older -> later ($split)" "$WORK/e.json"
    done
    "$BIN" train --manifest "$CORPUS/manifest.csv" --out "$WORK/all.spamflow" "${flags[@]}" \
        2>&1 | grep "category macro-F1" | sed 's/.*CV category/  train split, 5-fold CV: category/'
    "$BIN" eval --model "$WORK/all.spamflow" --manifest "$CORPUS/manifest.csv" --split test \
        --json "$WORK/e.json" --threads "$THREADS" >/dev/null
    categories "train -> test split" "$WORK/e.json"
done
