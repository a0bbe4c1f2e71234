#!/usr/bin/env bash
# Checks the Docker Compose stack without a Docker engine: docker-compose.yml against the Compose
# specification's JSON schema, deploy/prometheus/prometheus.yml with promtool, every query of the
# Grafana dashboard with promtool's PromQL parser, and that the files agree with each other and
# with the code (run.toml keys against the `spamflow run` configuration, metric names against the
# exporter, topics against the topic-creation script, ports and mount paths). Runs every check,
# then exits non-zero if any failed.
#
# Installs what it lacks into $SPAMFLOW_TOOLS (default ~/.cache/spamflow-check):
#   check-jsonschema (PyPI, in a virtualenv; ships the Compose schema, no download at check time)
#   promtool (from Debian's `prometheus` package, unpacked there; no service is installed)
#   dev/compose-check (compose-go, the loader of `docker compose`), built where Go exists
# `docker compose config` runs as well where the Compose plugin exists.
#
# Usage: dev/check-compose.sh [PROJECT_DIR]   (default: this repository)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${1:-$here/..}" && pwd)
tools=${SPAMFLOW_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/spamflow-check}
check_jsonschema_version=0.39.0
mkdir -p "$tools"

# --- tools -------------------------------------------------------------------------------------
venv=$tools/venv
if ! "$venv/bin/check-jsonschema" --version 2>/dev/null | grep -qF "$check_jsonschema_version"; then
  echo "installing check-jsonschema $check_jsonschema_version into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "check-jsonschema==$check_jsonschema_version" "tomli; python_version < '3.11'"
fi
python=$venv/bin/python

promtool=$(command -v promtool || true)
if [ -z "$promtool" ]; then
  promtool=$tools/prometheus/usr/bin/promtool
  if [ ! -x "$promtool" ]; then
    echo "unpacking promtool from Debian's prometheus package into $tools/prometheus" >&2
    download=$(mktemp -d)
    chmod 0777 "$download" # apt's _apt user downloads into it
    if ! (cd "$download" && apt-get download prometheus >/dev/null 2>&1); then
      apt-get update -qq >/dev/null
      (cd "$download" && apt-get download prometheus >/dev/null 2>&1)
    fi
    rm -rf "$tools/prometheus"
    dpkg-deb -x "$download"/prometheus_*.deb "$tools/prometheus"
    rm -rf "$download"
  fi
fi

cd "$root"
failed=0
passed=0
step() { # NAME COMMAND...
  local name=$1
  shift
  local output
  if output=$("$@" 2>&1); then
    passed=$((passed + 1))
    echo "ok    $name"
  else
    failed=$((failed + 1))
    echo "FAIL  $name"
    printf '%s\n' "$output" | sed 's/^/      /'
  fi
}

# --- syntax ------------------------------------------------------------------------------------
step "docker-compose.yml matches the Compose specification schema" \
  "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
# The loader of `docker compose` itself (compose-go, a Go module), built once where Go exists.
if command -v go >/dev/null; then
  stamp=$(cat "$here/compose-check/go.sum" "$here/compose-check/main.go" | sha256sum | cut -c1-16)
  compose_check=$tools/compose-check-$stamp
  if [ ! -x "$compose_check" ]; then
    echo "building dev/compose-check (compose-go) into $compose_check" >&2
    (cd "$here/compose-check" && go build -o "$compose_check" .)
  fi
  step "docker-compose.yml loads with compose-go, every profile enabled" \
    "$compose_check" docker-compose.yml
else
  echo "skip  compose-go loader (no Go here)"
fi
if docker compose version >/dev/null 2>&1; then
  step "docker compose config" docker compose -f docker-compose.yml config --quiet
else
  echo "skip  docker compose config (no Compose plugin here)"
fi
step "promtool check config deploy/prometheus/prometheus.yml" \
  "$promtool" check config deploy/prometheus/prometheus.yml
step "bash -n deploy/kafka/create-topics.sh" bash -n deploy/kafka/create-topics.sh

# --- queries and cross-file consistency --------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step "dashboard, provisioning, run.toml and compose agree with each other and the code" \
  "$python" - "$work/dashboard-rules.yml" <<'PY'
import json, re, sys
from pathlib import Path
from ruamel.yaml import YAML
try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

# A file that does not parse: one line, not a traceback (the exit status stays 1).
sys.excepthook = lambda kind, error, _: print(f"{kind.__name__}: {error}", file=sys.stderr)
yaml = YAML(typ="safe")
problems = []
def need(ok, what):
    if not ok:
        problems.append(what)

compose = yaml.load(Path("docker-compose.yml"))
services = compose.get("services", {})
for name in ("kafka", "kafka-init", "spamflow", "prometheus", "grafana"):
    need(name in services, f"docker-compose.yml: no service {name!r}")
for name, service in services.items():
    for dependency in service.get("depends_on", []):
        need(dependency in services, f"{name}: depends on undefined service {dependency!r}")
if problems:
    sys.exit("\n".join(problems))

def binds(service):
    out = {}
    for volume in services[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        out[target] = source
        if source.startswith("./"):
            need(Path(source).exists(), f"{service}: mounted {source} does not exist")
    return out

# spamflow: replicas in one group, config mount where the Dockerfile's CMD reads it.
spamflow = services["spamflow"]
replicas = str(spamflow.get("deploy", {}).get("replicas", 1))
need(replicas.isdigit() and int(replicas) >= 2, f"spamflow: deploy.replicas is {replicas!r}, not 2 or more")
need("container_name" not in spamflow, "spamflow: container_name stops scaling")
need("ports" not in spamflow, "spamflow: fixed host ports stop scaling")
dockerfile = Path("Dockerfile").read_text()
cmd = re.search(r'^CMD\s+(\[.*\])\s*$', dockerfile, re.M)
need(cmd is not None, "Dockerfile: no CMD in exec form")
config_path = None
command = spamflow.get("command") or (json.loads(cmd.group(1)) if cmd else [])
if "--config" in command:
    config_path = command[command.index("--config") + 1]
need(re.search(r'^ENTRYPOINT\s+\["spamflow"\]', dockerfile, re.M) is not None,
     'Dockerfile: ENTRYPOINT is not ["spamflow"]')
run_source = binds("spamflow").get(config_path)
need(run_source is not None, f"spamflow: nothing mounted at its --config path {config_path}")

# run.toml: only keys that `spamflow run` knows (its RunConfig denies unknown ones).
source = Path("crates/spamflow-stream/src/config.rs").read_text()
struct = re.search(r"pub struct RunConfig \{(.*?)\n\}", source, re.S)
need(struct is not None, "config.rs: no RunConfig struct")
fields = set(re.findall(r"^\s*pub (\w+):", struct.group(1), re.M)) if struct else set()
tables = {"kafka", "consumer", "producer"}
run = tomllib.loads(Path(run_source or "deploy/spamflow/run.toml").read_text())
for key, value in run.items():
    need(key in fields, f"run.toml: unknown key {key!r} (RunConfig has {sorted(fields)})")
    need(isinstance(value, dict) == (key in tables), f"run.toml: {key!r} has the wrong shape")
listen = run.get("http_listen", "127.0.0.1:9464")
host, _, port = listen.rpartition(":")
need(host in ("0.0.0.0", "[::]"), f"run.toml: http_listen {listen} is not reachable from Prometheus")

# Kafka: the brokers spamflow uses are advertised; every topic it writes is created.
kafka_env = services["kafka"].get("environment", {})
advertised = kafka_env.get("KAFKA_ADVERTISED_LISTENERS", "")
for broker in run.get("brokers", "127.0.0.1:9092").split(","):
    need(f"://{broker.strip()}" in advertised, f"run.toml: broker {broker} is not advertised ({advertised})")
need(str(kafka_env.get("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR")) == "1",
     "kafka: transactions on one node need KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1")
init_script = binds("kafka-init")
script_source = next((s for s in init_script.values() if s.endswith(".sh")), None)
need(script_source is not None, "kafka-init: no topic script mounted")
script = Path(script_source or "deploy/kafka/create-topics.sh").read_text()
created = {t.strip("'\"") for t in re.findall(r"^\s*create\s+(\S+)\s+\d+", script, re.M)}
if "mail.spam.$category" in created:
    loop = re.search(r"for category in ([^;]+);", script)
    created |= {f"mail.spam.{c}" for c in (loop.group(1).split() if loop else [])}
needed = set(run.get("input_topics", ["mail.inbound"]))
needed |= {run.get("output_topic", "mail.labeled"), run.get("dead_letter_topic", "mail.deadletter")}
if run.get("category_topic"):
    categories = ["pharma", "mortgage", "software", "stock", "adult", "fraud", "other"]
    needed |= {run["category_topic"].replace("{category}", c) for c in categories}
for topic in sorted(needed - created):
    problems.append(f"topic {topic} is used by run.toml but not created by {script_source}")
replay = services.get("replay", {}).get("command", [])
if "--topic" in replay:
    need(replay[replay.index("--topic") + 1] in run.get("input_topics", ["mail.inbound"]),
         "replay: writes to a topic spamflow does not read")

# Prometheus finds the replicas by the service name on the http_listen port.
prometheus_config = yaml.load(Path("deploy/prometheus/prometheus.yml"))
jobs = {j["job_name"]: j for j in prometheus_config.get("scrape_configs", [])}
sd = [c for c in jobs.get("spamflow", {}).get("dns_sd_configs", [])]
need(any("spamflow" in c.get("names", []) and str(c.get("port")) == port for c in sd),
     f"prometheus.yml: no dns_sd_configs for 'spamflow' on port {port}")
need(binds("prometheus").get("/etc/prometheus/prometheus.yml") == "./deploy/prometheus/prometheus.yml",
     "prometheus: config not mounted at /etc/prometheus/prometheus.yml")

# Grafana: provisioning mounted, the provider reads the mounted dashboards, uids match.
grafana = binds("grafana")
provisioning = grafana.get("/etc/grafana/provisioning")
need(provisioning is not None, "grafana: provisioning not mounted at /etc/grafana/provisioning")
provisioning = Path(provisioning or "deploy/grafana/provisioning")
datasources = []
for f in sorted((provisioning / "datasources").glob("*.y*ml")):
    datasources += yaml.load(f).get("datasources", [])
uids = {d.get("uid") for d in datasources if d.get("type") == "prometheus"}
need(bool(uids), "grafana: no provisioned Prometheus datasource")
need(all(d.get("url") == "http://prometheus:9090" for d in datasources), "grafana: datasource url is not http://prometheus:9090")
providers = []
for f in sorted((provisioning / "dashboards").glob("*.y*ml")):
    providers += yaml.load(f).get("providers", [])
need(bool(providers), "grafana: no dashboard provider")
dashboard_files = []
for p in providers:
    path = p.get("options", {}).get("path")
    host_dir = grafana.get(path)
    need(host_dir is not None, f"grafana: provider path {path} is not mounted")
    if host_dir:
        dashboard_files += sorted(Path(host_dir).glob("*.json"))
need(bool(dashboard_files), "grafana: no dashboard JSON where the provider looks")
home = services["grafana"].get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
if home:
    need(any(home == f"{p.get('options', {}).get('path')}/{f.name}" for p in providers for f in dashboard_files),
         f"grafana: home dashboard {home} is not a provisioned file")

# Dashboard queries: metric names the exporter has, datasource uid, PromQL syntax (promtool).
telemetry = Path("crates/spamflow-stream/src/telemetry.rs").read_text()
metrics = set(re.findall(r'pub const \w+: &str = "(spamflow_\w+)";', telemetry))
need(bool(metrics), "telemetry.rs: no metric names found")
rules = []
for f in dashboard_files:
    try:
        dashboard = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        problems.append(f"{f}: not JSON: {e}")
        continue
    panels = list(dashboard.get("panels", []))
    for p in list(panels):
        panels += p.get("panels", [])
    ids = [p.get("id") for p in panels]
    need(len(ids) == len(set(ids)), f"{f}: duplicate panel ids")
    for panel in panels:
        if panel.get("type") == "row":
            continue
        title = panel.get("title", "?")
        targets = panel.get("targets", [])
        need(bool(targets), f"{f}: panel {title!r} has no query")
        for t in targets + [panel]:
            ds = t.get("datasource")
            if isinstance(ds, dict):
                need(ds.get("uid") in uids, f"{f}: panel {title!r} uses datasource uid {ds.get('uid')!r}")
        for t in targets:
            expr = t.get("expr", "")
            need(bool(expr.strip()), f"{f}: panel {title!r} has an empty query")
            for name in set(re.findall(r"\bspamflow_\w+", expr)):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                need(name in metrics or base in metrics, f"{f}: panel {title!r} uses unknown metric {name}")
            # Grafana's variables become fixed ranges for the parser.
            plain = re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)
            rules.append({"record": f"dashboard:check_{len(rules)}", "expr": plain})
Path(sys.argv[1]).write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}, indent=1))
if problems:
    sys.exit("\n".join(problems))
print(f"{len(rules)} dashboard queries, {len(run)} run.toml keys, {len(needed)} topics checked")
PY
if [ -s "$work/dashboard-rules.yml" ]; then
  step "dashboard queries parse as PromQL (promtool check rules)" \
    "$promtool" check rules "$work/dashboard-rules.yml"
fi

echo "check-compose: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
