#!/usr/bin/env bash
# Set up, then run the whole test suite on SQLite and on PostgreSQL (what CI runs).
# The two runs go side by side (most of a run is waiting on real processes); RAYFARM_TEST_SERIAL=1 runs
# them one after the other. Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAYFARM_RAYVISION_VENV="$PWD/.venv-rayvision"
PG_URL=$(bash scripts/pg.sh start)
LOGS=$(mktemp -d)
trap 'bash scripts/pg.sh stop; rm -rf "$LOGS"' EXIT

run_sqlite() { .venv/bin/python -m pytest -q -p no:cacheprovider "$@"; }
run_pg() { RAYFARM_TEST_DATABASE_URL="$PG_URL" .venv/bin/python -m pytest -q -p no:cacheprovider "$@"; }

if [ "${RAYFARM_TEST_SERIAL:-0}" = 1 ]; then
  echo "=== test suite on SQLite"
  run_sqlite "$@"
  echo "=== test suite on PostgreSQL ($PG_URL)"
  run_pg "$@"
  exit 0
fi

echo "=== test suite on SQLite and on PostgreSQL ($PG_URL), side by side"
started=$SECONDS
run_sqlite "$@" >"$LOGS/sqlite.log" 2>&1 & sqlite_pid=$!
run_pg "$@" >"$LOGS/pg.log" 2>&1 & pg_pid=$!
sqlite_rc=0; pg_rc=0
wait "$sqlite_pid" || sqlite_rc=$?
wait "$pg_pid" || pg_rc=$?
echo "=== SQLite run (exit $sqlite_rc)"
cat "$LOGS/sqlite.log"
echo "=== PostgreSQL run (exit $pg_rc)"
cat "$LOGS/pg.log"
echo "=== both runs took $((SECONDS - started)) s: SQLite exit $sqlite_rc, PostgreSQL exit $pg_rc"
[ "$sqlite_rc" = 0 ] && [ "$pg_rc" = 0 ]
