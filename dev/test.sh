#!/usr/bin/env bash
# The test command: sets up what a fresh machine lacks (build packages, the Kafka jars), starts a
# local Apache Kafka broker, runs formatting, lint and compose checks, two minutes of fuzzing
# (dev/fuzz.sh) and every test of the workspace (unit, property, CLI and end-to-end tests on the
# real broker), then stops the broker.
# Needs ../shared/corpora/spamassassin beside the repository, Java 17 and Maven.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

source dev/setup.sh
spamflow_setup
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# docker-compose.yml, deploy/ and the Dockerfile's settings (no Docker engine needed).
bash dev/check-compose.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --quiet -p spamflow-cli
# Two minutes of fuzzing the parse-to-features path (skipped without the nightly toolchain).
bash dev/fuzz.sh
# A broker of its own for the end-to-end tests: its own port and a fresh data folder.
KAFKA_PORT=${SPAMFLOW_TEST_KAFKA_PORT:-19092}
spamflow_start_broker
export SPAMFLOW_TEST_BROKERS=$BROKERS
export SPAMFLOW_BIN="$root/target/debug/spamflow"

status=0
cargo test --workspace 2>&1 | tee "${TMPDIR:-/tmp}/spamflow-test.log" || status=$?
# One closing line for the whole run.
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "${TMPDIR:-/tmp}/spamflow-test.log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "${TMPDIR:-/tmp}/spamflow-test.log" | awk '{s += $1} END {print s + 0}')
echo "spamflow: $passed passed, $failed failed"
exit "$status"
