#!/usr/bin/env bash
# Set up, then run the whole test suite on SQLite and again on PostgreSQL (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAYFARM_RAYVISION_VENV="$PWD/.venv-rayvision"
PG_URL=$(bash scripts/pg.sh start)
trap 'bash scripts/pg.sh stop' EXIT
echo "=== test suite on SQLite"
.venv/bin/python -m pytest -q "$@"
echo "=== test suite on PostgreSQL ($PG_URL)"
RAYFARM_TEST_DATABASE_URL="$PG_URL" .venv/bin/python -m pytest -q "$@"
