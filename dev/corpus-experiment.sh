# Shared set-up of the offline corpus experiments (dev/drift-experiment.sh, dev/bench-train.sh,
# dev/generalization.sh, dev/category-experiment.sh); sourced, not run. From the repository root
# it sets CORPUS (default ../shared/corpora/spamassassin), BIN (SPAMFLOW_BIN, default
# target/release/spamflow, built if missing), THREADS (default: every core) and WORK (a temporary
# folder removed on exit), and defines `filter` and `periods`.
CORPUS=$(cd "${CORPUS:-../shared/corpora/spamassassin}" && pwd)
BIN=${SPAMFLOW_BIN:-target/release/spamflow}
THREADS=${THREADS:-$(nproc)}
if [[ ! -x $BIN ]]; then
    nice cargo build --release -p spamflow-cli
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# filter OUT SUBSETS...: the manifest rows of the given subsets, paths made absolute (the
# manifest reader uses an absolute path as is).
filter() {
    local out=$1
    shift
    awk -F, -v OFS=, -v corpus="$CORPUS" -v subsets="$*" '
        BEGIN { n = split(subsets, s, " "); for (i = 1; i <= n; i++) keep[s[i]] = 1 }
        NR == 1 { print; next }
        ($3 in keep) { $1 = corpus "/" $1; print }' "$CORPUS/manifest.csv" >"$out"
}

# periods: $WORK/older.csv (spam, easy_ham) and $WORK/later.csv (spam_2, easy_ham_2), the
# manifests of the corpus's older and later mail without hard_ham.
periods() {
    filter "$WORK/older.csv" spam easy_ham
    filter "$WORK/later.csv" spam_2 easy_ham_2
}
