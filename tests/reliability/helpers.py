"""Shared pieces of the fault tests: chunk scripts with worker-side records, a TCP proxy that can be cut,
log parsing, and small API helpers. Everything runs on 127.0.0.1.

`RAYFARM_FULL=1` selects the full-size variants (10 worker kills, 5 server restarts, 30 s cuts).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from rayfarm.sdk import RayfarmAPI
from tests.farmproc import PYTHON, UNCONFINED_COMMANDS, Credentials, FarmServer, FarmWorker, wait_for

FULL = os.environ.get("RAYFARM_FULL") == "1"
FINISHED = {23, 25, 30, 35, 45}

# One chunk of a command task (one frame): appends "start" and "done" lines to a record file
# (frame, event, node, pid, time), sleeps as long as the speed file says (read when the chunk starts),
# then writes {output}/f_<frame>.txt naming the node. The node is the worker's folder name.
CHUNK = """
import os, sys, time
frame, output, record, speed = sys.argv[1:5]
node = os.path.basename(output.rsplit(os.sep + "leases" + os.sep, 1)[0])
def note(event):
    with open(record, "a") as handle:
        handle.write(f"{frame} {event} {node} {os.getpid()} {time.time():.3f}\\n")
note("start")
print(f"rendering frame {frame} on node {node}", flush=True)
try:
    seconds = float(open(speed).read())
except (OSError, ValueError):
    seconds = 0.1
time.sleep(seconds)
with open(os.path.join(output, f"f_{frame}.txt"), "w") as handle:
    handle.write(f"{frame} {node}\\n")
note("done")
"""


def prepare(farm: FarmServer, *users: str, allow_commands: bool = True) -> list[Credentials]:
    """Users (allowed to run commands) and the worker token, made in this process on the farm's database.

    The same as `rayfarm user create` / `rayfarm worker-token`, without starting a CLI process for each.
    """
    from rayfarm.config import Settings
    from rayfarm.server.farm import Farm
    from rayfarm.store import users as users_store
    from rayfarm.store import workers as workers_store
    from rayfarm.store.db import database_url

    url = database_url(farm.data_dir, farm.env.get("RAYFARM_DATABASE_URL"))
    handle = Farm(Settings(data_dir=farm.data_dir, database_url=url))
    try:
        made = []
        with handle.db.write() as conn:
            farm._token = workers_store.worker_token(conn, handle.keys)
            for name in users:
                user, key = users_store.create(conn, handle.keys, name, allow_commands=allow_commands)
                made.append(Credentials(user.id, user.name, user.access_id, key))
        return made
    finally:
        handle.db.dispose()


@dataclass
class Record:
    frame: str
    event: str
    node: str
    pid: int
    time: float


class Chunks:
    """The CHUNK script, its record file and its speed file, in a folder of the test."""

    def __init__(self, folder: Path, seconds: float = 0.1):
        folder.mkdir(parents=True, exist_ok=True)
        self.script = folder / "chunk.py"
        self.script.write_text(CHUNK)
        self.record = folder / "record.txt"
        self.record.touch()
        self.speed = folder / "speed.txt"
        self.set_seconds(seconds)

    def set_seconds(self, seconds: float) -> None:
        """How long the chunks that start from now on take."""
        temp = self.speed.with_suffix(".tmp")
        temp.write_text(str(seconds))
        temp.replace(self.speed)

    def command(self) -> list[str]:
        return [PYTHON, str(self.script), "{frame}", "{output}", str(self.record), str(self.speed)]

    def lines(self) -> list[Record]:
        rows = []
        for line in self.record.read_text().splitlines():
            frame, event, node, pid, at = line.split()
            rows.append(Record(frame, event, node, int(pid), float(at)))
        return rows

    def events(self, event: str, frame: str | None = None) -> list[Record]:
        return [r for r in self.lines() if r.event == event and (frame is None or r.frame == frame)]

    def running(self) -> list[Record]:
        """Runs that started and have not written their "done" line (yet, or ever)."""
        rows = self.lines()
        finished = {r.pid for r in rows if r.event == "done"}
        return [r for r in rows if r.event == "start" and r.pid not in finished]

    def done_counts(self) -> collections.Counter:
        return collections.Counter(r.frame for r in self.events("done"))


def command_task_json(command: list[str], frames: str, **task_info: str) -> dict:
    info = {"task_id": "", "project_name": "reliability", "input_cg_file": "", "frames_per_task": "1",
            "pre_frames": "000", "stop_after_test": "2", "job_stop_time": "600", "task_stop_time": "0"}
    info.update(task_info)
    return {"software_config": {"cg_name": "command", "cg_version": "", "plugins": {}},
            "task_info": info,
            "scene_info": {"common": {"frames": frames}},
            "additional_info": {"command": command}}


def submit(api: RayfarmAPI, task_json: dict, task_id: int | None = None) -> int:
    if task_id is None:
        task_id = api.task.create_task()["taskIdList"][0]
    api.task.upload_task_json(task_id, task_json)
    api.task.submit_task(task_id)
    return task_id


def info(api: RayfarmAPI, task_id: int) -> dict:
    return api.query.task_info([task_id])["items"][0]


def frames_of(api: RayfarmAPI, task_id: int) -> dict[str, dict]:
    """Every chunk of a task by frameIndex."""
    found, page = {}, 1
    while items := api.query.task_frames(task_id, page_num=page, page_size=1000)["items"]:
        found.update({item["frameIndex"]: item for item in items})
        page += 1
    return found


def report(farm: FarmServer, api: RayfarmAPI | None = None, task_ids: Iterable[int] = (),
           workers: Iterable[FarmWorker] = ()) -> str:
    """What a failed wait shows: tasks, chunks, the end of the server's and the nodes' logs."""
    parts = []
    for task_id in task_ids:
        try:
            parts.append(f"task: {json.dumps(info(api, task_id))}")
            for frame in frames_of(api, task_id).values():
                if frame["frameStatus"] != 4:
                    parts.append(f"frame: {json.dumps(frame)}")
        except Exception as exc:  # the report must not hide the original failure
            parts.append(f"(could not query task {task_id}: {exc})")
    parts.append(f"server log:\n{farm.log()[-4000:]}")
    for worker in [*farm.workers, *workers]:
        parts.append(f"worker {worker.name} log:\n{worker.log()[-3000:]}")
    return "\n".join(parts)


def wait_task(farm: FarmServer, api: RayfarmAPI, task_id: int, statuses: set[int], timeout: float) -> dict:
    def reached():
        item = info(api, task_id)
        return item if item["taskStatus"] in statuses else None

    return wait_for(reached, timeout, f"task {task_id} to reach status {sorted(statuses)}", interval=0.25,
                    details=lambda: report(farm, api, [task_id]))


ACCEPTED = re.compile(r"result (\w+) accepted for task (\d+) chunk (\S+) ")
# a result the node did not get accepted: refused by the server, or given up when the server took the chunk back
NOT_ACCEPTED = re.compile(r"result (\w+) (?:not accepted|dropped) for task (\d+) chunk (\S+) ")


def accepted_results(workers: Iterable[FarmWorker]) -> collections.Counter:
    """(task id, chunk, node) -> results the server accepted, as the nodes logged them."""
    found = collections.Counter()
    for worker in workers:
        for match in ACCEPTED.finditer(worker.log()):
            found[(int(match.group(2)), match.group(3), worker.name)] += 1
    return found


def accepted_per_chunk(workers: Iterable[FarmWorker]) -> collections.Counter:
    """(task id, chunk) -> accepted results over all nodes."""
    per_chunk = collections.Counter()
    for (task_id, chunk, _node), count in accepted_results(workers).items():
        per_chunk[(task_id, chunk)] += count
    return per_chunk


def wait_reported(workers: Iterable[FarmWorker], chunks: set[tuple[int, str]], timeout: float = 15) -> None:
    """Wait until the nodes have logged an answer for every chunk: the server commits a result before the
    node reads the answer, so a finished task can be seen a moment before its node's last log line."""
    workers = list(workers)

    def logged() -> bool:
        seen = set()
        for worker in workers:
            text = worker.log()
            seen |= {(int(m.group(2)), m.group(3)) for m in ACCEPTED.finditer(text)}
            seen |= {(int(m.group(2)), m.group(3)) for m in NOT_ACCEPTED.finditer(text)}
        return chunks <= seen

    wait_for(logged, timeout, "the nodes to log the answers to their results",
             details=lambda: "\n".join(w.log()[-2000:] for w in workers))


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in /metrics text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        got = ",".join(sorted(head[head.index("{") + 1:-1].split(","))) if "{" in head else ""
        if got == wanted:
            return float(value)
    return 0.0


# ------------------------------------------------------------------ a TCP proxy that can be cut


@dataclass
class Proxy:
    """A loopback TCP proxy (asyncio streams, own thread) in front of ``target_port``.

    `cut()` closes the listening socket and aborts every open connection, so the far side sees the
    server as unreachable (connection refused); `restore()` listens again on the same port.
    """

    target_port: int
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.base_events.Server | None = None
    _writers: set = field(default_factory=set)
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxy", daemon=True)
        self._thread.start()
        self._call(self._listen())
        return self

    def _call(self, coroutine, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, up_writer}
        self._writers |= pair

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(OSError):
                if sink.can_write_eof():
                    sink.write_eof()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            for each in pair:
                each.transport.abort()
            self._writers -= pair

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        if self._loop is None:
            return
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        self._loop = None


class ProxiedWorker(FarmWorker):
    """A `rayfarm worker` that reaches its server through a :class:`Proxy` (its --server is the proxy)."""

    def __init__(self, server: FarmServer, name: str, proxy: Proxy, extra_args: list[str] | None = None):
        # the last --server wins (click), so the proxy's URL replaces the server's own
        super().__init__(server, name, [*(extra_args or []), UNCONFINED_COMMANDS, "--server", proxy.url])
