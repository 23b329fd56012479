#!/usr/bin/env bash
# Starts Microsoft's Azure Storage emulator (azurite, the queue service only) in the
# background, for the Azure Queue Storage ETL tests: http://127.0.0.1:10001/devstoreaccount1,
# the well-known development account (`UseDevelopmentStorage=true`).
#
# azurite is installed from tests/services/azurite's package-lock.json (`npm ci`) the first
# time. Messages are kept in memory only; telemetry is off. `AZURITE_QUEUE_PORT` picks
# another port (the tests start a second instance of their own this way).
set -euo pipefail
cd "$(dirname "$0")/../../tests/services/azurite"

if [ ! -x node_modules/.bin/azurite-queue ]; then
  echo "installing azurite (npm ci in $(pwd))"
  npm ci --no-audit --no-fund --loglevel=error
fi

port="${AZURITE_QUEUE_PORT:-10001}"
workspace="${TMPDIR:-/tmp}/corvid-azurite-$port"
mkdir -p "$workspace"
cd "$workspace"
nohup "$OLDPWD/node_modules/.bin/azurite-queue" \
  --queueHost 127.0.0.1 --queuePort "$port" \
  --inMemoryPersistence \
  --skipApiVersionCheck --disableTelemetry --silent \
  >"$workspace/azurite.log" 2>&1 </dev/null &
echo "azurite-queue started on 127.0.0.1:$port (pid $!, log $workspace/azurite.log)"
