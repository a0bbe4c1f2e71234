#!/usr/bin/env bash
# Drift experiment, offline: does `spamflow update` catch up with newer mail, and how much faster
# than a full retrain?
#
#   base     trained on the train rows of the older subsets (spam, easy_ham)
#   update   base updated with the train rows of the later subsets (spam_2, hard_ham, easy_ham_2)
#   retrain  trained from scratch on all train rows (older and later)
#
# All three are evaluated on the test rows of the later subsets (and on the older subsets' test
# rows, to show what the update keeps). Prints 1-AUC, FPR, recall and macro-F1 per model and the
# retrain/update time ratio, and what `spamflow compare` decides for base -> update and
# update -> retrain.
#
#   dev/drift-experiment.sh          # the experiment (about 3 minutes on the 2-core machine)
#   dev/drift-experiment.sh tune     # update settings on train rows only: the later subsets' train
#                                    # rows split 80/20 by path hash, updates learn from the 80 %
#                                    # and are scored on the 20 % for a grid of settings
#
# CORPUS (default ../shared/corpora/spamassassin), SPAMFLOW_BIN (default target/release/spamflow,
# built if missing), THREADS (default: every core), EPOCHS, MAX_NEW, FOLDS (update settings;
# defaults of `spamflow update` when unset), COPIES=0 (`update --no-headerless-copies`; base and
# retrain still train with headerless copies: compare with dev/generalization.sh for those); for `tune`, GRID_EPOCHS, GRID_MAX_NEW, GRID_FOLDS.
set -euo pipefail
cd "$(dirname "$0")/.."
source dev/corpus-experiment.sh
filter "$WORK/old.csv" spam easy_ham
filter "$WORK/later.csv" spam_2 hard_ham easy_ham_2
filter "$WORK/all.csv" spam easy_ham spam_2 hard_ham easy_ham_2

seconds() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
update_flags=()
[[ -n ${EPOCHS:-} ]] && update_flags+=(--epochs "$EPOCHS")
[[ -n ${MAX_NEW:-} ]] && update_flags+=(--max-new-features "$MAX_NEW")
[[ -n ${FOLDS:-} ]] && update_flags+=(--folds "$FOLDS")
copy_flags=()
[[ ${COPIES:-1} == 0 ]] && copy_flags+=(--no-headerless-copies)

summary() { # summary NAME JSON...: one line per evaluation
    python3 - "$@" <<'PY'
import json, sys
name = sys.argv[1]
for path in sys.argv[2:]:
    e = json.load(open(path))
    s, c = e["spam"], e["categories"]
    label = path.rsplit("/", 1)[-1].removesuffix(".json")
    print(f"{label:<22} 1-AUC {s['one_minus_auc_pct']:7.4f} %  FPR {s['fpr']*100:6.3f} % ({s['false_positives']} FP)"
          f"  recall {s['recall']*100:5.1f} %  recall@FPR<=0.1% {s['recall_at_fpr_0_1pct']*100:5.1f} %"
          f"  macro-F1 {c['macro_f1_pharma_mortgage_software']:.3f}  ({e['messages']} msgs)")
PY
}

eval_on() { # eval_on MODEL MANIFEST SPLIT JSON
    "$BIN" eval --model "$1" --manifest "$2" --split "$3" --json "$4" --threads "$THREADS" >/dev/null
}

echo "== base: train on spam + easy_ham (train rows)"
"$BIN" train --manifest "$WORK/old.csv" --out "$WORK/base.spamflow" --threads "$THREADS"

if [[ ${1:-} == tune ]]; then
    # 80/20 split of the later train rows by a hash of the path: decisions never see test rows.
    python3 - "$WORK/later.csv" "$WORK/tune.csv" <<'PY'
import csv, hashlib, sys
rows = list(csv.reader(open(sys.argv[1])))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(rows[0])
    for r in rows[1:]:
        if r[3] != "train":
            continue
        h = int(hashlib.sha256(r[0].encode()).hexdigest(), 16) % 5
        r[3] = "holdout" if h == 0 else "learn"
        w.writerow(r)
PY
    eval_on "$WORK/base.spamflow" "$WORK/tune.csv" holdout "$WORK/base.json"
    summary base "$WORK/base.json"
    for epochs in ${GRID_EPOCHS:-1 3 5 10}; do
        for max_new in ${GRID_MAX_NEW:-0 2000 5000}; do
            for folds in ${GRID_FOLDS:-3}; do
                name="e${epochs}_new${max_new}_folds${folds}"
                "$BIN" update --model "$WORK/base.spamflow" --manifest "$WORK/tune.csv" \
                    --split learn --out "$WORK/u.spamflow" --epochs "$epochs" \
                    --max-new-features "$max_new" --folds "$folds" --threads "$THREADS" \
                    "${copy_flags[@]}" >/dev/null
                eval_on "$WORK/u.spamflow" "$WORK/tune.csv" holdout "$WORK/$name.json"
                summary x "$WORK/$name.json"
            done
        done
    done
    exit 0
fi

echo "== update: base + spam_2, hard_ham, easy_ham_2 (train rows)"
start=$(seconds)
"$BIN" update --model "$WORK/base.spamflow" --manifest "$WORK/later.csv" \
    --out "$WORK/update.spamflow" --threads "$THREADS" "${update_flags[@]}" "${copy_flags[@]}"
update_s=$(elapsed "$start" "$(seconds)")

echo "== retrain: all subsets (train rows) from scratch"
start=$(seconds)
"$BIN" train --manifest "$WORK/all.csv" --out "$WORK/retrain.spamflow" --threads "$THREADS"
retrain_s=$(elapsed "$start" "$(seconds)")

for model in base update retrain; do
    eval_on "$WORK/$model.spamflow" "$WORK/later.csv" test "$WORK/later-$model.json"
    eval_on "$WORK/$model.spamflow" "$WORK/old.csv" test "$WORK/older-$model.json"
done
echo
echo "== test rows of the later subsets (spam_2, hard_ham, easy_ham_2)"
summary later "$WORK"/later-{base,update,retrain}.json
echo "== test rows of the older subsets (spam, easy_ham)"
summary older "$WORK"/older-{base,update,retrain}.json
echo "== spamflow compare on the later test rows (exit 0 ACCEPT, 3 REJECT)"
for pair in "base update" "update retrain"; do
    set -- $pair
    echo -n "current $1, candidate $2: "
    "$BIN" compare --current "$WORK/$1.spamflow" --candidate "$WORK/$2.spamflow" \
        --manifest "$WORK/later.csv" --threads "$THREADS" | tail -1 || true
done
echo
python3 -c "import sys; u, r = float(sys.argv[1]), float(sys.argv[2]); print(f'update {u:.1f} s, retrain {r:.1f} s: update is {r / u:.1f}x faster')" "$update_s" "$retrain_s"
