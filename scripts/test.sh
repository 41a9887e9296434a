#!/usr/bin/env bash
# The README's test command. Sets up what a fresh machine lacks, then runs every test:
# - Deno 2.1.4 from the npm package `deno` (scripts/deno.sh does that on first use);
# - PostgreSQL 15 and pg_cron from Debian's packages, for the tests on a real server;
# - Chromium from Debian's packages, for the playground's browser test.
# Extra arguments go to `deno test` (e.g. a file or --filter "name").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
ls /usr/share/postgresql/*/extension/pg_cron.control >/dev/null 2>&1 || missing+=(postgresql-15-cron)
# The playground's end-to-end test drives Debian's Chromium with playwright-core.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "Installing ${missing[*]} with apt-get ..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "Missing ${missing[*]}: install them (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

export NO_COLOR=1
exec "$root/scripts/deno.sh" test --allow-net --allow-env --allow-read --allow-write --allow-run --allow-sys "${@:-tests/}"
