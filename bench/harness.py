"""What every benchmark does around its measurement: a temporary world, one JSON line, a deadline.

A benchmark opens a :class:`Bench` (a temporary folder, and on PostgreSQL a fresh database), starts real
`rayfarm server` and `rayfarm worker` processes through it (tests/support/processes.py) and leaves through
its ``with``: process groups are stopped, the database is dropped and the folder removed, whatever happened.
``BENCH_WHATIF=yappi`` runs those processes through bench/whatif.py (a CPU profile of each).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.databases import create_database, drop_database, start_postgres, stop_postgres
from tests.support.farms import in_process, make_users
from tests.support.processes import Credentials, FarmServer, FarmWorker, free_port, stop_process, wait_for


def machine() -> dict:
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def emit(name: str, figures: dict) -> None:
    """Print the benchmark's one JSON line."""
    if os.environ.get("BENCH_WHATIF"):
        figures = {"whatif": os.environ["BENCH_WHATIF"], **figures}
    print(json.dumps({"bench": name, **figures, "machine": machine()}, separators=(", ", ": ")), flush=True)


def note(text: str) -> None:
    """Progress for the human watching (stderr: stdout carries only the JSON line)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--server-processes", type=int, default=1,
                        help="uvicorn processes of the server (PostgreSQL only; `rayfarm server --processes`)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) for inspection")
    return parser


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """SIGALRM after ``seconds``: every benchmark is bounded in time even if something hangs."""
    def fire(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds:g} s; aborted")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(main: Callable[[], None]) -> None:
    """Entry point: SIGTERM unwinds through the Bench's cleanup like any error."""
    def stop(signum, frame):
        raise SystemExit(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, stop)
    main()


class Bench:
    """One benchmark run's world: temp folder, database, server and worker processes; all gone on exit.

    ``database_url`` given: run on that database (made and dropped by someone else, e.g. the test suite)."""

    def __init__(self, database: str = "sqlite", keep: bool = False, name: str = "bench",
                 database_url: str | None = None):
        self.database = database
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix=f"rayfarm-{name}-"))
        self.data_dir = self.tmp / "data"
        self.data_dir.mkdir()
        self.database_url = database_url
        self.servers: list[FarmServer] = []
        self._children: list[subprocess.Popen] = []  # helper processes (popen): stopped on exit
        self._pg_base: str | None = None  # our own database on this PostgreSQL server: drop it on exit
        self._pg_started = False

    def __enter__(self) -> Bench:
        try:
            if self.database_url is None and self.database == "postgres":
                self._pg_base, self._pg_started = start_postgres()
                self.database_url = create_database(self._pg_base, "rf_bench_")
            elif self.database_url is None:
                self.database_url = f"sqlite:///{self.data_dir / 'rayfarm.db'}"
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for child in reversed(self._children):
            with contextlib.suppress(Exception):
                stop_process(child)
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()
        if self._pg_base and self.database_url:
            with contextlib.suppress(Exception):
                drop_database(self._pg_base, self.database_url)
        if self._pg_started:
            with contextlib.suppress(Exception):
                stop_postgres()
        if self.keep:
            note(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        """A helper process (Redis, Celery) in its own session, stopped on exit if still running."""
        child = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self._children.append(child)
        return child

    def farm(self):
        """An in-process Farm on the same data dir and database (store-level set-up without HTTP)."""
        return in_process(self.data_dir, self.database_url)

    def start_server(self, processes: int = 1) -> FarmServer:
        """A `rayfarm server` (bench/whatif.py's with BENCH_WHATIF) on the bench's data dir and database."""
        server = FarmServer(self.data_dir, free_port(), ["--processes", str(processes)] if processes > 1 else [],
                            env={"RAYFARM_DATABASE_URL": self.database_url},
                            module="bench.whatif" if os.environ.get("BENCH_WHATIF") else "rayfarm")
        self.servers.append(server)
        return server.start()

    def start_workers(self, server: FarmServer, count: int, prefix: str = "node", timeout: float = 120,
                      extra: tuple[str, ...] = ()) -> list[FarmWorker]:
        """``count`` real `rayfarm worker` processes (``extra``: more of their options), started together;
        returned once all have registered."""
        started = [server.start_worker(f"{prefix}{i:02d}", *extra, wait=False) for i in range(count)]
        wait_for(lambda: all(w.registered() for w in started), timeout, f"{count} workers to register")
        return started

    def create_user(self, server: FarmServer, name: str = "bench", commands: bool = True) -> Credentials:
        (user,) = make_users(server, name, commands=(name,) if commands else ())
        return user


def sdk(server: FarmServer, user: Credentials, **options):
    """Our SDK, pointed at the server."""
    from rayfarm.sdk import RayfarmAPI

    return RayfarmAPI(user.access_id, user.access_key, domain=server.domain, **options)


def poll_until_done(api, task_id: int, interval: float, timeout: float) -> tuple[dict, int]:
    """Poll queryTaskInfo every ``interval`` s until the task is done (25): its item and how many polls it took.
    Any other end, or ``timeout`` s, raises."""
    began = time.perf_counter()
    polls = 0
    while True:
        item = api.query.task_info([task_id])["items"][0]
        polls += 1
        if item["taskStatus"] == 25:
            return item, polls
        if item["taskStatus"] not in (0, 5):
            raise RuntimeError(f"the task ended in status {item['taskStatus']}: {item}")
        if time.perf_counter() - began > timeout:
            raise TimeoutError(f"the task is not done after {timeout:g} s: {item}")
        time.sleep(interval)


def timed_submit(api, task_json: dict) -> tuple[int, dict]:
    """createTask + taskJsonFile + submit through the SDK; (task id, seconds of each step)."""
    t0 = time.perf_counter()
    task_id = api.task.task_id
    t1 = time.perf_counter()
    api.task.upload_task_json(task_id, task_json)
    t2 = time.perf_counter()
    api.task.submit_task(task_id)
    t3 = time.perf_counter()
    return task_id, {"create_s": round(t1 - t0, 4), "task_json_s": round(t2 - t1, 4), "submit_s": round(t3 - t2, 4)}
