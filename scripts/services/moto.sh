#!/usr/bin/env bash
# Starts moto (an AWS emulator; the SQS Queue ETL tests use its SQS) on 127.0.0.1:${1:-4566}
# in the background, installing it first into ~/.cache/corvid/moto-venv from
# tests/services/moto/requirements.txt when that venv is missing or out of date.
# Its log goes to ~/.cache/corvid/moto-<port>.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
port="${1:-4566}"
venv="${CORVID_MOTO_VENV:-$HOME/.cache/corvid/moto-venv}"
requirements="tests/services/moto/requirements.txt"
stamp="$venv/.corvid-requirements"

if [ ! -x "$venv/bin/moto_server" ] || ! cmp -s "$requirements" "$stamp"; then
  echo "installing moto into $venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi

log="$(dirname "$venv")/moto-$port.log"
nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
echo "moto_server started on 127.0.0.1:$port (pid $!, log $log)"
