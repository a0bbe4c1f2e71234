# Sourced by dev/test.sh, dev/demo.sh and dev/bench-stream.sh (from the repository root, with
# $root set): checks and installs what a fresh project machine lacks.

CORPUS=${CORPUS:-$root/../shared/corpora/spamassassin}
export CORPUS

# Rust, the shared corpus, and the packages rdkafka's bundled librdkafka build needs.
spamflow_setup() {
  if ! command -v cargo >/dev/null; then
    echo "cargo is missing: install Rust (rustup) first" >&2
    exit 1
  fi
  if [ ! -f "$CORPUS/manifest.csv" ]; then
    echo "the shared corpus is missing at $CORPUS (set CORPUS)" >&2
    exit 1
  fi
  command -v java >/dev/null && command -v mvn >/dev/null || {
    echo "Java 17 and Maven are needed for the local Kafka broker" >&2
    exit 1
  }
  local missing=() tool
  for tool in g++ make pkg-config; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Starts a broker with a fresh data folder on KAFKA_PORT, stops it on exit; sets BROKERS.
spamflow_start_broker() {
  KAFKA_DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/spamflow-kafka.XXXXXX")
  export KAFKA_PORT KAFKA_DATA_DIR
  trap 'bash dev/kafka.sh stop >/dev/null 2>&1 || true; rm -rf "$KAFKA_DATA_DIR"' EXIT
  BROKERS=$(bash dev/kafka.sh start | tail -1)
}
