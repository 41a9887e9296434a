#!/usr/bin/env bash
# Runs the pinned Deno (2.1.4, the version the hosted Supabase Edge Runtime runs),
# installing it from the npm package `deno` on first use, so a machine with Node needs nothing else.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
deno="$tools/node_modules/.bin/deno"
version="2.1.4"
if [ ! -x "$deno" ] || ! "$deno" --version 2>/dev/null | grep -q "deno $version"; then
  echo "Installing deno@$version from the npm registry into .tools/ ..." >&2
  npm install --silent --no-audit --no-fund --prefix "$tools" "deno@$version" >&2
fi
# Deno 2.1.4 only trusts the network's certificates when told to use the system store.
export DENO_TLS_CA_STORE="${DENO_TLS_CA_STORE:-system}"
exec "$deno" "$@"
