#!/usr/bin/env bash
# Training-scale benchmark: `spamflow train` on the train split repeated 1x and 4x (COPIES), with
# the default model's subword tokenizer (so only the rest of training is timed). Prints messages,
# wall time and peak memory per run: both should grow linearly with the messages.
#
#   dev/bench-train.sh            # about 5 minutes on the 2-core project machine
#
# CORPUS (default ../shared/corpora/spamassassin), SPAMFLOW_BIN (default target/release/spamflow,
# built if missing), COPIES (default "1 4"), OPTIONS (a training-options file, e.g.
# dev/options/ftrl-50-passes.toml; default: the built-in defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
source dev/corpus-experiment.sh
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
for copies in ${COPIES:-1 4}; do
    awk -F, -v OFS=, -v corpus="$CORPUS" -v copies="$copies" '
        NR == 1 { print; next }
        $4 == "train" { $1 = corpus "/" $1; for (i = 0; i < copies; i++) print }' \
        "$CORPUS/manifest.csv" >"$WORK/train.csv"
    "$BIN" train --manifest "$WORK/train.csv" --out "$WORK/model.spamflow" \
        --tokenizer models/default.spamflow ${OPTIONS:+--options "$OPTIONS"} 2>&1 |
        sed -n "s/^trained on /${copies}x: trained on /p"
done
