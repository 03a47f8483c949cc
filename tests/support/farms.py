"""Farms for tests: one in-process (store-level tests, no HTTP) and real servers shared by a test module.

The in-process farm runs on a temporary SQLite file, or on a fresh PostgreSQL database when the tests run
on PostgreSQL. Users are made directly in a farm's database (what `rayfarm user create` does, without a
process per user).
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rayfarm.config import Settings
from rayfarm.scheduler import dispatch, results
from rayfarm.server.farm import Farm
from rayfarm.store import tasks as task_store
from rayfarm.store import users as users_store
from rayfarm.store import workers
from rayfarm.store.db import sqlite_url
from tests.support import taskjson
from tests.support.databases import fresh_database_url
from tests.support.processes import Credentials, FarmServer, free_port
from tests.support.snapshots import forget

OPEN: list[Farm] = []


def in_process(data_dir: Path, database_url: str, migrate: bool = True) -> Farm:
    """A Farm object on a data dir and database (a running server's too); dispose of its db when done."""
    farm = Farm(Settings(data_dir=data_dir, database_url=database_url))
    if migrate:
        farm.db.migrate()
    return farm


def make_farm(tmp_path: Path) -> Farm:
    """An in-process farm of its own; :func:`close_all` (the store tests' autouse fixture) disposes of it."""
    farm = in_process(tmp_path, fresh_database_url() or sqlite_url(tmp_path))
    OPEN.append(farm)
    return farm


def close_all() -> None:
    while OPEN:
        OPEN.pop().db.dispose()


def make_user(farm: Farm, name: str = "alice", **flags):
    with farm.db.write() as conn:
        user, _ = users_store.create(conn, farm.keys, name, **flags)
    return user


def create_task(farm: Farm, user, level: int = 50, **task) -> int:
    """A created task with its task.json (``taskjson.store_text(**task)``), not submitted."""
    with farm.db.write() as conn:
        (task_id, _), = task_store.create(conn, user, count=1, priority=level, platform="2", out_user_id=None,
                                          task_labels=[], clone_id=None, artist=None)
        task_store.put_file(conn, user, task_id, "task.json", taskjson.store_text(**task))
    return task_id


def submit_created(farm: Farm, user, task_id: int, conn=None) -> None:
    def run(conn):
        task_store.submit(conn, user, task_id, None, lambda *args: {"scene_root": None})

    if conn is not None:
        return run(conn)
    with farm.db.write() as conn:
        run(conn)


def submit(farm: Farm, user, level: int = 50, **task) -> int:
    task_id = create_task(farm, user, level, **task)
    submit_created(farm, user, task_id)
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


# ------------------------------------------------------------------ real servers


def running_farm(tmp_path_factory: pytest.TempPathFactory, name: str = "farm", *args: str) -> Iterator[FarmServer]:
    """One real `rayfarm server` (extra ``args``) for a whole test module: ``yield from`` it in a fixture.

    Its data dir is ``<tmp>/farm``, so that files next to it (canaries) are outside it."""
    yield from farm_at(tmp_path_factory.mktemp(name) / "farm", *args)


def farm_at(data_dir: Path, *args: str) -> Iterator[FarmServer]:
    """A real `rayfarm server` (extra ``args``) on ``data_dir`` and a free port: ``yield from`` it in a fixture."""
    server = FarmServer(data_dir, free_port(), extra_args=list(args))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        forget(server)


def make_users(farm: FarmServer, *names: str, disabled: tuple[str, ...] = (), commands: tuple[str, ...] = (),
               admins: tuple[str, ...] = ()) -> list[Credentials]:
    """Users made directly in the farm's database, in one transaction; also reads the worker token, so that it
    exists before any snapshot and the farm starts no process for it."""
    handle = in_process(farm.data_dir, farm.database_url, migrate=False)
    made = []
    try:
        with handle.db.write() as conn:
            for name in names:
                user, key = users_store.create(conn, handle.keys, name, allow_commands=name in commands,
                                               is_admin=name in admins)
                if name in disabled:
                    users_store.set_disabled(conn, name, True)
                made.append(Credentials(user.id, user.name, user.access_id, key))
            farm._token = workers.worker_token(conn, handle.keys)
    finally:
        handle.db.dispose()
    return made
