#!/usr/bin/env bash
# Generalisation benchmark: how well does a model trained on one period's mail score mail that
# came later, from other senders, collected elsewhere? A proxy for the mail spamflow will meet in
# production, which is never the mail it was trained on.
#
# For each training-options file given (none: the defaults), a model is trained on the train rows
# of the older subsets (spam, easy_ham) and evaluated on the later subsets (spam_2, easy_ham_2),
# then on the later subsets with hard_ham (commercial mail that is not spam), with the category
# head's macro-F1 over the labeled spam of each set. Train rows of the
# later subsets are the yardstick for decisions; their test rows are printed too. Also prints
# each options file's random-split figures (5-fold cross-validation on all train rows, test split)
# and the test split with each message's header cut down to what its author wrote (From, To, Cc,
# Reply-To, Subject, Date and the MIME fields; no relays, list fields, ids or X- fields): mail
# that reaches the model through servers and lists it has never seen; then cut down further to
# the Subject and the MIME fields (mail exported from an archive, with no sender or date).
# Every line has the log loss and expected calibration error of the spam probability: whether
# it still means what it says on mail the model has not seen.
#
#   dev/generalization.sh [OPTIONS.toml ...]    # e.g. dev/options/no-header-words.toml; `default`
#                                                # names the built-in defaults
#
# CORPUS (default ../shared/corpora/spamassassin), SPAMFLOW_BIN (default target/release/spamflow,
# built if missing), THREADS (default: every core), TOKENIZER (a model or tokenizer JSON whose
# subword tokenizer every model reuses, e.g. models/default.spamflow: then two options files
# differ only by their options, though the shipped tokenizer has seen the later subsets' train
# rows; by default each model trains its own, and figures move a little from run to run).
set -euo pipefail
cd "$(dirname "$0")/.."
source dev/corpus-experiment.sh
(($# > 0)) || set -- default
periods
filter "$WORK/later-hard.csv" spam_2 easy_ham_2 hard_ham
# Two cut-down copies of the test split: authored headers only, and bare (Subject and the MIME
# fields, the least a message needs to be read: mail from an archive export, say).
cut_headers() { # cut_headers OUT FIELD-REGEX
    python3 - "$CORPUS" "$@" <<'PY'
import csv, os, re, sys
corpus, out, fields_kept = sys.argv[1], sys.argv[2], sys.argv[3]
kept = re.compile(fields_kept.encode(), re.I)
with open(os.path.join(corpus, "manifest.csv"), newline="") as f, \
        open(out + ".csv", "w", newline="") as m:
    rows = csv.DictReader(f)
    writer = csv.DictWriter(m, fieldnames=rows.fieldnames)
    writer.writeheader()
    for row in rows:
        if row["split"] != "test":
            continue
        raw = open(os.path.join(corpus, row["path"]), "rb").read()
        if raw.startswith(b"From "):
            raw = raw.split(b"\n", 1)[-1]
        blank = re.search(rb"(?:^|\r?\n)\r?\n", raw)
        head, sep, body = (raw[:blank.start()], blank.group(), raw[blank.end():]) if blank else (raw, b"", b"")
        fields, keep = [], False
        for line in head.split(b"\n"):
            if line[:1] in (b" ", b"\t"):
                if keep:
                    fields.append(line)
                continue
            keep = kept.match(line) is not None
            if keep:
                fields.append(line)
        path = os.path.join(out, row["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        newline = b"\r\n" if sep.startswith(b"\r") else b"\n"
        if not fields:
            sep = newline
        open(path, "wb").write(newline.join(f.rstrip(b"\r") for f in fields) + sep + body)
        writer.writerow({**row, "path": path})
PY
}
cut_headers "$WORK/authored" "(from|to|cc|reply-to|subject|date|mime-version|content-[a-z-]+):"
cut_headers "$WORK/bare" "(subject|mime-version|content-[a-z-]+):"

line() { # line LABEL JSON
    python3 - "$@" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
e = json.load(open(path))
s = e["spam"]
c = e["categories"]
cats = f"  categories: macro-F1 {c['macro_f1']:.3f}, pharma/mortgage/software {c['macro_f1_pharma_mortgage_software']:.3f}" if c["support"] else ""
print(f"  {label:<28} 1-AUC {s['one_minus_auc_pct']:7.4f} %  recall@FPR<=0.1% {s['recall_at_fpr_0_1pct']*100:5.1f} %  @0 FP {s['recall_at_zero_fp']*100:5.1f} %"
      f"  at threshold: FPR {s['fpr']*100:6.3f} %, recall {s['recall']*100:5.1f} %"
      f"  log loss {s['log_loss']:.4f}, ECE {s['expected_calibration_error']:.4f}{cats}  ({e['messages']} msgs)")
PY
}

for options in "$@"; do
    flags=()
    [[ $options == default ]] || flags=(--options "$options")
    [[ -z ${TOKENIZER:-} ]] || flags+=(--tokenizer "$TOKENIZER")
    echo "== $options"
    if ! "$BIN" train --manifest "$WORK/older.csv" --out "$WORK/older.spamflow" \
        --threads "$THREADS" "${flags[@]}" >"$WORK/train.log" 2>&1; then
        cat "$WORK/train.log" >&2
        exit 1
    fi
    for set in later later-hard; do
        for split in train test; do
            "$BIN" eval --model "$WORK/older.spamflow" --manifest "$WORK/$set.csv" --split "$split" \
                --json "$WORK/e.json" --threads "$THREADS" >/dev/null
            line "older -> $set ($split rows)" "$WORK/e.json"
        done
    done
    "$BIN" train --manifest "$CORPUS/manifest.csv" --out "$WORK/all.spamflow" --threads "$THREADS" \
        "${flags[@]}" 2>&1 | grep -E "5-fold CV|category macro-F1" | sed 's/^ */  all train rows: /'
    "$BIN" eval --model "$WORK/all.spamflow" --manifest "$CORPUS/manifest.csv" --split test \
        --json "$WORK/e.json" --threads "$THREADS" >/dev/null
    line "all train rows -> test split" "$WORK/e.json"
    "$BIN" eval --model "$WORK/all.spamflow" --manifest "$WORK/authored.csv" --split test \
        --json "$WORK/e.json" --threads "$THREADS" >/dev/null
    line "  ... authored headers only" "$WORK/e.json"
    "$BIN" eval --model "$WORK/all.spamflow" --manifest "$WORK/bare.csv" --split test \
        --json "$WORK/e.json" --threads "$THREADS" >/dev/null
    line "  ... Subject and MIME fields" "$WORK/e.json"
done
