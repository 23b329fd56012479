#!/usr/bin/env bash
# Run the official-Node.js-client (npm ravendb, pinned in package.json) suite against a server.
#   CORVID_URL=http://127.0.0.1:8080 bash tests/node/run.sh [test files...]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOCK="$HERE/package-lock.json"

if [ -z "${CORVID_URL:-}" ]; then
  echo "run.sh: CORVID_URL is not set; point it at the server, e.g. CORVID_URL=http://127.0.0.1:8080" >&2
  exit 2
fi

# `npm ci` only when the lockfile changed since the last install (stamp keyed on its hash).
LOCK_HASH="$(sha256sum "$LOCK" | cut -d' ' -f1)"
STAMP="$HERE/node_modules/.corvid-lock-$LOCK_HASH"
if [ ! -f "$STAMP" ]; then
  echo "run.sh: npm ci in $HERE" >&2
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$STAMP"
fi

export CORVID_URL
cd "$HERE"
if [ "$#" -eq 0 ]; then
  set -- test/*.test.js
fi
# One file at a time: the machine is small and each file owns its own database anyway.
exec node --test --test-concurrency=1 "$@"
