#!/usr/bin/env bash
# Longer fuzzing of what a server or a config file feeds the daemon: the HTTP/1.1 response-head
# parser and body unframing (src/mcp/h1/props.rs), SSE decoding (src/mcp/sse/props.rs), JSON-RPC
# decoding and terminal-safe text (src/mcp/protocol/props.rs), config parsing and validation
# (src/config/props.rs). These are proptest properties; CI runs them at PROPTEST_CASES=512 as part
# of `cargo test`, this script at many more cases in release mode.
# Usage: scripts/fuzz.sh [CASES]    (default 100000 per property; about 10 minutes on 2 cores)
# A failure is shrunk to a minimal input and saved under proptest-regressions/: commit that file,
# it replays first on every later run (the crash becomes a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."
PROPTEST_CASES="${1:-100000}" cargo test --release --locked --lib props:: -- --test-threads "${TEST_THREADS:-2}"
