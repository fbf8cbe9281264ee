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
