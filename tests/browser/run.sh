#!/usr/bin/env bash
# Run the browser suite: each test file starts its own corvid serve (CORVID_BIN, default
# target/debug/corvid) and Debian's Chromium (CORVID_CHROMIUM, default /usr/bin/chromium).
#   bash tests/browser/run.sh [test files...]
# With CI=true, a skipped or todo test fails the run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LOCK="$HERE/package-lock.json"

CORVID_BIN="${CORVID_BIN:-$REPO/target/debug/corvid}"
CORVID_CHROMIUM="${CORVID_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CORVID_BIN" ]; then
  echo "run.sh: no corvid binary at $CORVID_BIN; run \`cargo build -p corvid\` or set CORVID_BIN" >&2
  exit 2
fi
if [ ! -x "$CORVID_CHROMIUM" ]; then
  echo "run.sh: no Chromium at $CORVID_CHROMIUM; \`apt-get install -y chromium\` or set CORVID_CHROMIUM" >&2
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

export CORVID_BIN CORVID_CHROMIUM
cd "$HERE"
if [ "$#" -eq 0 ]; then
  set -- test/*.test.js
fi
# One file at a time: the machine is small, and each file has its own server and browser.
tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
status=0
node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" "$@" || status=$?
if [ "${CI:-}" = "true" ]; then
  for kind in skipped todo; do
    count="$(sed -n "s/^# $kind //p" "$tap" | tail -1)"
    if [ "${count:-0}" != "0" ]; then
      echo "run.sh: $count $kind test(s); CI runs every browser test" >&2
      status=1
    fi
  done
fi
echo "screenshots: ${CORVID_SCREENSHOTS:-$REPO/target/browser-screenshots}"
exit "$status"
