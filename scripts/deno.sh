#!/usr/bin/env bash
# Runs the pinned Deno (2.1.4, the version the hosted Supabase Edge Runtime runs), installing it
# from the npm package `deno` into .tools/ on first use, so a machine with Node needs nothing else.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
version="2.1.4"
# The platform package ships the real binary; exec it directly (not the Node wrapper) so signals
# reach Deno itself and `kill` leaves no orphan.
find_deno() { ls "$tools"/node_modules/@deno/*/deno 2>/dev/null | head -n 1 || true; }
deno="$(find_deno)"
if [ -z "$deno" ] || ! "$deno" --version 2>/dev/null | grep -q "deno $version " || ! "$deno" --version 2>/dev/null | grep -q "deno $version "; then
  echo "Installing deno@$version from the npm registry into .tools/ ..." >&2
  npm install --silent --no-audit --no-fund --prefix "$tools" "deno@$version" >&2
  deno="$(find_deno)"
fi
# Deno 2.1.4 only trusts the network's certificates when told to use the system store.
export DENO_TLS_CA_STORE="${DENO_TLS_CA_STORE:-system}"
exec "$deno" "$@"
