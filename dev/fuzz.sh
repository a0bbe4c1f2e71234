#!/usr/bin/env bash
# Fuzzes the parse-to-features path (crates/spamflow-features/fuzz, target parse_to_features) for
# FUZZ_SECONDS (default 120; 0 skips), seeded with the unit-test fixtures and dev/modern-mail.
# Needs the nightly toolchain and cargo-fuzz (this machine has both); without them it says so and
# skips: they cannot be installed by the script, as rustup's servers are not reachable here, only
# the package registries. A crash or a
# failed check ends it with libFuzzer's report and the failing input under fuzz/artifacts/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-120}
if ((seconds == 0)); then
  echo "fuzz: skipped (FUZZ_SECONDS=0)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: skipped (needs the nightly toolchain and cargo-fuzz)"
  exit 0
fi
corpus=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$corpus" "$log"' EXIT
cp "$root"/crates/spamflow-features/tests/fixtures/* "$root"/dev/modern-mail/* "$corpus"/
cd "$root/crates/spamflow-features"
# -O: release build without debug assertions (see the fuzz crate's Cargo.toml).
status=0
cargo +nightly fuzz run -O parse_to_features "$corpus" -- \
  -max_total_time="$seconds" -dict=fuzz/parse_to_features.dict -print_final_stats=1 \
  >"$log" 2>&1 || status=$?
if ((status == 0)); then
  grep -E '^(Done|stat::)' "$log" || true
else
  tail -80 "$log"
fi
echo "fuzz: parse_to_features for ${seconds} s, exit $status"
exit "$status"
