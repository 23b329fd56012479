#!/usr/bin/env bash
# Run the official-Python-client (ravendb==7.2.7) compatibility suite against a server.
#   CORVID_URL=http://127.0.0.1:8080 bash tests/python/run.sh [pytest args...]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${VENV:-$REPO/target/pyvenv}"
REQ="$HERE/requirements.txt"

if [ -z "${CORVID_URL:-}" ]; then
  echo "run.sh: CORVID_URL is not set; point it at the server, e.g. CORVID_URL=http://127.0.0.1:8080" >&2
  exit 2
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "run.sh: creating venv at $VENV" >&2
  python3 -m venv "$VENV"
fi

# Re-install only when requirements.txt changed (stamp keyed on its hash).
REQ_HASH="$(sha256sum "$REQ" | cut -d' ' -f1)"
STAMP="$VENV/.corvid-requirements-$REQ_HASH"
if [ ! -f "$STAMP" ]; then
  echo "run.sh: installing $(tr '\n' ' ' < "$REQ")into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  rm -f "$VENV"/.corvid-requirements-*
  touch "$STAMP"
fi

export CORVID_URL
cd "$REPO"
# Keep pytest's cache out of the work tree.
exec "$VENV/bin/python" -m pytest -q -o cache_dir="$REPO/target/pytest_cache" tests/python "$@"
