#!/usr/bin/env bash
# The whole stack on loopback, no Docker: the reference MCP target, the mcp-canary daemon probing
# it, Prometheus with the shipped recording and alert rules, and Alertmanager with
# deploy/alertmanager.yml (its webhook receivers point at a port nothing listens on unless you
# run one; see the Alertmanager UI for routed alerts). Every process on a free loopback port.
# Needs: cargo, prometheus, prometheus-alertmanager (Debian packages). Ctrl-C stops everything.
# Usage: deploy/local-stack.sh            (then break the target: the script prints the curl)
set -euo pipefail
cd "$(dirname "$0")/.."

for c in prometheus prometheus-alertmanager python3; do
  command -v "$c" >/dev/null || { echo "missing $c (apt-get install prometheus prometheus-alertmanager python3)" >&2; exit 1; }
done
PROFILE=${PROFILE:-release}   # PROFILE=debug reuses a test build
if [ "$PROFILE" = release ]; then cargo build --release --quiet; else cargo build --quiet; fi
BIN=target/$PROFILE/mcp-canary
WORK=$(mktemp -d -t mcp-canary-stack.XXXXXX)
PIDS=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; logs were in $WORK"
}
trap cleanup INT TERM EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_line() { # wait_line FILE PATTERN: print the first matching line (bounded: 30 s)
  for _ in $(seq 300); do grep -m1 -o "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $2 in $1" >&2; exit 1
}

"$BIN" target --listen 127.0.0.1:0 >"$WORK/target.out" 2>"$WORK/target.log" & PIDS+=($!)
MCP_URL=$(wait_line "$WORK/target.out" 'http://[0-9.:]*/mcp')

cat >"$WORK/canary.toml" <<TOML
[server]
listen = "127.0.0.1:0"

[[targets]]
name = "reference"
url = "$MCP_URL"
interval = "5s"
timeout = "4s"
[targets.probe]
tool = "echo"
tool_arguments = { message = "canary" }
resource = "canary://static/hello"
prompt = "greeting"
prompt_arguments = { name = "canary" }
[targets.notification]
tool = "notify"
arguments = { nonce = "{nonce}" }
method = "notifications/message"
TOML
"$BIN" serve --config "$WORK/canary.toml" >"$WORK/daemon.out" 2>"$WORK/daemon.log" & PIDS+=($!)
DAEMON_URL=$(wait_line "$WORK/daemon.out" 'http://[0-9.:]*')

AM_PORT=$(free_port)
prometheus-alertmanager --config.file=deploy/alertmanager.yml --storage.path="$WORK/am" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$WORK/alertmanager.log" 2>&1 & PIDS+=($!)

PROM_PORT=$(free_port)
{
  echo "global: {scrape_interval: 5s, evaluation_interval: 5s}"
  echo "rule_files:"
  for f in prometheus/rules/*.yml alerts/*.yml; do echo "  - $PWD/$f"; done
  echo "alerting: {alertmanagers: [{static_configs: [{targets: ['127.0.0.1:$AM_PORT']}]}]}"
  echo "scrape_configs: [{job_name: mcp-canary, static_configs: [{targets: ['${DAEMON_URL#http://}']}]}]"
} >"$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 & PIDS+=($!)

ADMIN=${MCP_URL%/mcp}
cat <<TXT

reference target   $MCP_URL
canary metrics     $DAEMON_URL/metrics
prometheus         http://127.0.0.1:$PROM_PORT   (alerts: /alerts, rules: /rules)
alertmanager       http://127.0.0.1:$AM_PORT
logs               $WORK

Break the target:  curl -XPOST -d '{"error_rate": 1}' $ADMIN/admin/knobs
Heal it:           curl -XPOST -d '{"error_rate": 0}' $ADMIN/admin/knobs
Grafana (not started here): provision grafana/provisioning/ with url http://127.0.0.1:$PROM_PORT.
Ctrl-C stops everything.
TXT
wait
