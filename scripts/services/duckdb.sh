#!/usr/bin/env bash
# Installs DuckDB (its Python package; the OLAP ETL tests read Corvid's Parquet files with it)
# into ~/.cache/corvid/duckdb-venv from tests/services/duckdb/requirements.txt when that venv
# is missing or out of date, and prints the venv's python. There is no server to start: tests
# run `$venv/bin/python -c 'import duckdb; ...'`.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${CORVID_DUCKDB_VENV:-$HOME/.cache/corvid/duckdb-venv}"
requirements="tests/services/duckdb/requirements.txt"
stamp="$venv/.corvid-requirements"

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  echo "installing duckdb into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi

echo "$venv/bin/python"
