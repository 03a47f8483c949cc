"""Every row of a farm's database and every file under a folder, to show that a request changed nothing."""

import json
import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, select

from rayfarm.store.schema import call_record_tasks, call_records, metadata
from tests.support.processes import FarmServer

# What changes without any request: the replay memory, and a node's liveness as seen by the sweep; and what
# reads write: sign-in records (queryUserProfile is the official SDK's login).
VOLATILE_TABLES = {"seen_requests", "login_records"}
VOLATILE_COLUMNS = {"workers": {"state", "last_seen", "cpu", "mem_used"}}
VOLATILE_SETTINGS = {"last_sweep"}  # when the sweep last ran (rayfarm/store/outage.py)
# Files the server writes on its own (its log, the database) are not part of the file snapshot.
VOLATILE_FILES = ("server-", "rayfarm.db")

_engines: dict[str, Engine] = {}
# which audit rows a snapshot keeps: those of accepted calls (a refusal's own record is not a change it made)
REFUSAL_RECORDS = {
    "call_records": lambda: call_records.c.code == 200,
    "call_record_tasks": lambda: call_record_tasks.c.record_id.in_(select(call_records.c.id)
                                                                   .where(call_records.c.code == 200)),
}


def engine(farm: FarmServer) -> Engine:
    """An engine on the farm's database, made once per farm (farms.running_farm disposes of it)."""
    url = farm.database_url
    return _engines.get(url) or _engines.setdefault(url, create_engine(url))


def forget(farm: FarmServer) -> None:
    found = _engines.pop(farm.database_url, None)
    if found is not None:
        found.dispose()


def db_snapshot(farm: FarmServer) -> dict[str, list]:
    """Every row of every table (sorted), except what changes on its own."""
    snapshot = {}
    with engine(farm).connect() as conn:
        for name, table in metadata.tables.items():
            if name in VOLATILE_TABLES:
                continue
            columns = [c for c in table.columns if c.name not in VOLATILE_COLUMNS.get(name, set())]
            query = select(*columns)
            if name == "settings":
                query = query.where(table.c.key.not_in(VOLATILE_SETTINGS))
            if name in REFUSAL_RECORDS:  # a refused call writes its own audit record and nothing else
                query = query.where(REFUSAL_RECORDS[name]())
            rows = conn.execute(query).all()
            snapshot[name] = sorted(json.dumps(list(row), sort_keys=True, default=str) for row in rows)
    return snapshot


def file_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` (path -> size, mtime), except the server's own log and database."""
    found = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder) / name
            if name.startswith(VOLATILE_FILES):
                continue
            stat = path.lstat()
            found[str(path.relative_to(root))] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return found


def diff(before: dict, after: dict) -> dict:
    keys = set(before) | set(after)
    return {k: (before.get(k), after.get(k)) for k in sorted(keys) if before.get(k) != after.get(k)}
