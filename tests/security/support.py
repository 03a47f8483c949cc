"""Shared pieces of the security tests: a farm per module, snapshots of the database and the files, nodes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, select

from rayfarm.store.db import sqlite_url
from rayfarm.store.schema import call_record_tasks, call_records, metadata
from tests.farmproc import Credentials, FarmServer
from tests.integration.support import SCENE, Raw, blender_task_json, check_envelope, running_farm

# What changes without any request: the replay memory, and a node's liveness as seen by the sweep; and what
# reads write: sign-in records (queryUserProfile is the official SDK's login).
VOLATILE_TABLES = {"seen_requests", "login_records"}
VOLATILE_COLUMNS = {"workers": {"state", "last_seen", "cpu", "mem_used"}}
VOLATILE_SETTINGS = {"last_sweep"}  # when the sweep last ran (rayfarm/store/outage.py)
# Files the server writes on its own (its log, the database) are not part of the file snapshot.
VOLATILE_FILES = ("server-", "rayfarm.db")


def start_farm(tmp_path_factory: pytest.TempPathFactory, name: str, *args: str) -> Iterator[FarmServer]:
    """A real `rayfarm server` for a whole module; its data dir is ``<tmp>/farm`` next to the canaries."""
    farms = running_farm(tmp_path_factory, name, *args)
    server = next(farms)
    try:
        yield server
    finally:
        farms.close()  # stops the server
        engine = _engines.pop(database_url(server), None)
        if engine is not None:
            engine.dispose()


def database_url(farm: FarmServer) -> str:
    return farm.env.get("RAYFARM_DATABASE_URL") or sqlite_url(farm.data_dir)


def make_users(farm: FarmServer, *names: str, disabled: tuple[str, ...] = (), commands: tuple[str, ...] = (),
               admins: tuple[str, ...] = ()) -> list[Credentials]:
    """Users made directly in the farm's database (what `rayfarm user create` does, without starting a
    process per user); also makes the worker token, so that it exists before any snapshot."""
    from rayfarm.config import Settings
    from rayfarm.server.farm import Farm
    from rayfarm.store import users, workers

    admin = Farm(Settings(data_dir=farm.data_dir, database_url=database_url(farm)))
    made = []
    try:
        with admin.db.write() as conn:
            for name in names:
                user, key = users.create(conn, admin.keys, name, allow_commands=name in commands, is_admin=name in admins)
                if name in disabled:
                    users.set_disabled(conn, name, True)
                made.append(Credentials(user.id, user.name, user.access_id, key))
            farm._token = workers.worker_token(conn, admin.keys)
    finally:
        admin.db.dispose()
    return made


_engines: dict[str, Engine] = {}
# which audit rows a snapshot keeps: those of accepted calls (a refusal's own record is not a change it made)
REFUSAL_RECORDS = {
    "call_records": lambda: call_records.c.code == 200,
    "call_record_tasks": lambda: call_record_tasks.c.record_id.in_(select(call_records.c.id)
                                                                   .where(call_records.c.code == 200)),
}


def db_snapshot(farm: FarmServer) -> dict[str, list]:
    """Every row of every table (sorted), except what changes on its own."""
    url = database_url(farm)
    engine = _engines.get(url) or _engines.setdefault(url, create_engine(url))
    snapshot = {}
    with engine.connect() as conn:
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


def ok(raw: Raw, path: str, body=None):
    answer = raw.call(path, body)
    assert answer["code"] == 200, answer
    return answer["data"]


def submitted_task(raw: Raw, frames: str = "1-4[1]") -> int:
    """A Blender task waiting for nodes (its scene must be in the user's input storage)."""
    task_id = ok(raw, "/api/render/submit/createTask", {"count": 1, "taskUserLevel": 50})["taskIdList"][0]
    ok(raw, "/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "task.json",
                                                 "content": json.dumps(blender_task_json(frames=frames))})
    ok(raw, "/api/render/submit/task", {"taskId": task_id})
    return task_id


def command_task(raw: Raw, frames: str = "1-2[1]") -> int:
    """A command task (no scene file) for a user created with --allow-commands."""
    content = {"software_config": {"cg_name": "command"},
               "task_info": {"frames_per_task": "1", "pre_frames": "000", "stop_after_test": "2"},
               "scene_info_render": {"common": {"frames": frames}},
               "additional_info": {"command": ["true", "{frame}"]}}
    task_id = ok(raw, "/api/render/submit/createTask", {"count": 1, "taskUserLevel": 50})["taskIdList"][0]
    ok(raw, "/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "task.json",
                                                 "content": json.dumps(content)})
    ok(raw, "/api/render/submit/task", {"taskId": task_id})
    return task_id


class Node:
    """A render node speaking the native API by hand (no renderer): register, lease, heartbeat, complete."""

    def __init__(self, farm: FarmServer, name: str, software: tuple[str, ...] = ("command",)):
        self.farm = farm
        self.http = httpx.Client(base_url=farm.url, timeout=30,
                                 headers={"Authorization": f"Bearer {farm.worker_token()}"})
        answer = self.post("register", {"name": name, "software": {s: "" for s in software}})
        self.id, self.session = answer["workerId"], answer["session"]
        self.http.headers.update({"X-Worker-Id": str(self.id), "X-Worker-Session": self.session})

    def post(self, call: str, body: dict) -> dict:
        response = self.http.post(f"/v1/worker/{call}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def lease(self, count: int = 1) -> list[dict]:
        return self.post("lease", {"workerId": self.id, "session": self.session, "max": count})["leases"]

    def heartbeat(self, leases: list[dict]) -> dict:
        return self.post("heartbeat", {"workerId": self.id, "session": self.session,
                                       "running": [{"leaseId": lease["leaseId"], "progress": 1} for lease in leases]})

    def close(self) -> None:
        self.http.close()


__all__ = ["SCENE", "Raw", "check_envelope", "blender_task_json"]
