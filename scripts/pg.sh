#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for tests: `pg.sh start` prints its URL, `pg.sh stop` removes it.
# initdb refuses to run as root, so the cluster belongs to the postgres user.
set -euo pipefail
PGPORT=${RAYFARM_PG_PORT:-54329}
PGDIR=${RAYFARM_PG_DIR:-/tmp/rayfarm-pg}
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

case "${1:-}" in
  start)
    if [ ! -s "$PGDIR/PG_VERSION" ]; then
      mkdir -p "$PGDIR" && chown postgres "$PGDIR" && chmod 700 "$PGDIR"
      as_pg "$BIN/initdb" -D "$PGDIR" -U postgres --auth=trust -E UTF8 >/dev/null
      cat >> "$PGDIR/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGDIR'
max_connections = 400
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    fi
    if ! as_pg "$BIN/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; then
      as_pg "$BIN/pg_ctl" -D "$PGDIR" -l "$PGDIR/server.log" -w start >/dev/null
    fi
    echo "postgresql+psycopg://postgres@127.0.0.1:$PGPORT/postgres"
    ;;
  stop)
    if [ -d "$PGDIR" ]; then
      as_pg "$BIN/pg_ctl" -D "$PGDIR" -m fast -w stop >/dev/null 2>&1 || true
      rm -rf "$PGDIR"
    fi
    ;;
  *) echo "usage: pg.sh start|stop" >&2; exit 2 ;;
esac
