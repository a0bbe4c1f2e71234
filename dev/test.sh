#!/usr/bin/env bash
# The test command: sets up what a fresh machine lacks, then runs formatting and lint checks and
# every test of the workspace. Needs ../shared/corpora/spamassassin beside the repository.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust (rustup) first" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if [ ! -f ../shared/corpora/spamassassin/manifest.csv ]; then
  echo "the shared corpus is missing at $(cd .. && pwd)/shared/corpora/spamassassin" >&2
  exit 1
fi

# docker-compose.yml, deploy/ and the Dockerfile's settings (no Docker engine needed).
bash dev/check-compose.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace 2>&1 | tee "${TMPDIR:-/tmp}/spamflow-test.log"
# One closing line for the whole run.
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "${TMPDIR:-/tmp}/spamflow-test.log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "${TMPDIR:-/tmp}/spamflow-test.log" | awk '{s += $1} END {print s + 0}')
echo "spamflow: $passed passed, $failed failed"
