"""In-process farm on a temporary SQLite database, for store-level tests (no HTTP)."""

import json
import time
from pathlib import Path

from rayfarm.config import Settings
from rayfarm.scheduler import dispatch, results
from rayfarm.server.farm import Farm
from rayfarm.store import tasks as task_store
from rayfarm.store import users as users_store
from rayfarm.store import workers
from rayfarm.store.db import sqlite_url

OPEN: list[Farm] = []


def close_all() -> None:
    while OPEN:
        OPEN.pop().db.dispose()


def make_farm(tmp_path: Path) -> Farm:
    from tests.dbs import fresh_database_url

    settings = Settings(data_dir=tmp_path, database_url=fresh_database_url() or sqlite_url(tmp_path))
    farm = Farm(settings)
    farm.db.migrate()
    OPEN.append(farm)
    return farm


def make_user(farm: Farm, name: str = "alice", **flags):
    with farm.db.write() as conn:
        user, _ = users_store.create(conn, farm.keys, name, **flags)
    return user


def task_json(frames: str = "1-4", per_chunk: int = 1, pre: str = "000", pause: str = "2", software: str = "command",
              **task_info) -> str:
    info = {"frames_per_task": str(per_chunk), "pre_frames": pre, "stop_after_test": pause, **task_info}
    data = {"software_config": {"cg_name": software}, "task_info": info,
            "scene_info_render": {"common": {"frames": frames}}}
    if software == "command":
        data["additional_info"] = {"command": ["true", "{frame}"]}
    else:
        info.setdefault("input_cg_file", "D:/proj/a.blend")
    return json.dumps(data)


def submit(farm: Farm, user, level: int = 50, **kwargs) -> int:
    with farm.db.write() as conn:
        (task_id, _), = task_store.create(conn, user, count=1, priority=level, platform="2", out_user_id=None,
                                          task_labels=[], clone_id=None, artist=None)
        task_store.put_file(conn, user, task_id, "task.json", task_json(**kwargs))
        task_store.submit(conn, user, task_id, None, lambda *args: {"scene_root": None})
    return task_id


def register(farm: Farm, name: str, software=("command", "blender")):
    info = {"name": name, "hostname": name, "slots": 1, "cores": 1, "memory": 0, "gpu": "",
            "software": {s: "" for s in software}, "tags": [], "version": "test"}
    with farm.db.write() as conn:
        worker_id, session, _ = workers.register(conn, info, time.time())
        return conn.execute(workers.workers.select().where(workers.workers.c.id == worker_id)).first()


def claim(farm: Farm, worker, count: int = 1, now: float | None = None):
    with farm.db.write() as conn:
        return dispatch.claim(conn, worker, count, now or time.time(), 10.0)


def complete(farm: Farm, worker, claimed, result: str = "done", now: float | None = None):
    """A node's result, as the server records it (the task settled after commit where the store defers that)."""
    with farm.db.write() as conn:
        done = results.complete(conn, worker.id, claimed.frame.lease_id, result,
                                error="boom" if result != "done" else None, seconds=1.0, avg_cpu=None, avg_memory=None,
                                now=now or time.time())
    if done is not None and done.settle_after:
        results.settle_after_commit(farm.db, done)
    return done


def status(farm: Farm, task_id: int) -> int:
    with farm.db.read() as conn:
        return conn.scalar(task_store.tasks.select().with_only_columns(task_store.tasks.c.status)
                           .where(task_store.tasks.c.id == task_id))


def frame_statuses(farm: Farm, task_id: int) -> list[int]:
    with farm.db.read() as conn:
        rows = conn.execute(task_store.frames.select().where(task_store.frames.c.task_id == task_id)
                            .order_by(task_store.frames.c.seq)).all()
    return [r.status for r in rows]
