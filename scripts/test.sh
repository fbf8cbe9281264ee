#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what it needs, then runs every test.
# Usage: scripts/test.sh            (from anywhere; CI calls it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE...
  command -v "$1" >/dev/null 2>&1 && return 0
  shift
  if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@"
}

log "Installing system packages (only those missing)"
need_pkg curl curl ca-certificates
need_pkg cc gcc libc6-dev
need_pkg pkg-config pkg-config
need_pkg node nodejs
need_pkg npm npm
need_pkg python3 python3 python3-venv
need_pkg promtool prometheus
need_pkg prometheus prometheus
need_pkg prometheus-alertmanager prometheus-alertmanager
need_pkg redis-server redis-server
need_pkg nginx nginx
need_pkg chromium chromium
need_pkg systemd-analyze systemd
if ! command -v cargo >/dev/null 2>&1; then
  need_pkg cargo cargo rustc
fi
cargo --version; node --version; npm --version 2>/dev/null | tail -1

log "Installing independent MCP servers from the npm registry"
scripts/install-test-servers.sh

log "Format and lint"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

log "Tests"
# Property tests (bounded fuzzing, src/**/props.rs): this many cases each; scripts/fuzz.sh runs more.
export PROPTEST_CASES="${PROPTEST_CASES:-512}"
cargo test --all-targets --locked --no-fail-fast -- --test-threads "${TEST_THREADS:-2}"

log "MCP client tests (tests/client/) again over the lean transport profile sessions use (src/mcp/lean.rs)"
MCP_CANARY_TEST_OWN_CONNECTIONS=1 cargo test --locked --test client -- --test-threads "${TEST_THREADS:-2}"

log "Hostile suite against the release build: the daemon as shipped stays under 64 MB (docs/reliability.md)"
cargo build --release --locked --bin mcp-canary
TEST_MCP_CANARY_BIN="$PWD/target/release/mcp-canary" cargo test --locked --test hostile -- hostile_server:: hostile_lists:: --test-threads 1
