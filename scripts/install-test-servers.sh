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
