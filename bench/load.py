"""Load: many Renderbus clients and fake render nodes against one server, then every count reconciled.

    python -m bench.load [--clients 100] [--workers 50] [--seconds 60] [--database sqlite|postgres]
                         [--sdk-clients 10] [--think 0.25] [--render 0.2] [--fail-rate 0.02]
                         [--client httpx|raw] [--seed N] [--server-processes N] [--keep]

One server. Every client is a user of its own (so a per-key rate limit applies to each one
separately) and runs a script-like loop with a random pause (``--think``, mean seconds) between
operations: create + upload task.json + submit small tasks (command, Blender, and Blender with a
priority frame that pauses the task until the client asks for full speed), queryTaskInfo,
getTaskList, queryTaskFrames, queryAllFrameStats, stop then start, priority, node limit and
over-time changes, full speed, and a few aborts and deletes. At most ``--open-tasks`` unfinished
tasks per client, as a script that waits for its renders would. ``--sdk-clients`` of the clients
call through rayfarm's own SDK (``rayfarm.sdk.RayfarmAPI``, retries off so no failure is hidden) in
threads; the others sign requests with the SDK's signing over one ``httpx.AsyncClient`` each (or the
raw client of bench/common.py with ``--client raw``). The nodes speak the real worker protocol
(register, lease with wait, heartbeats that honour ``stop``, output upload for Blender chunks,
complete); they render nothing: a chunk is a sleep of about ``--render`` s, and ``--fail-rate`` of
them report a failure. Each node keeps its own record of every result it reported.

After ``--seconds`` the clients finish what they were doing, paused tasks get full speed, the farm
drains, and the run is reconciled: the tasks the clients created against the database, the API's
queryTaskInfo / queryTaskFrames / queryAllFrameStats / getTaskList against the database (read
directly with rayfarm.store.schema), and the database's done chunks and failed attempts against the
nodes' records. One JSON line: throughput, latency per call, errors, and every check.

``errors``: every call of a client or node that failed (HTTP or transport error, any Renderbus code
but 200) — except a stop or abort answered 718 because the task finished meanwhile, which counts only
once queryTaskInfo confirms it finished — and any task still unfinished ``--drain-timeout`` s after the
load. ``server_errors``: failures the server logged. A correct run has 0 of both and every check true.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common
from bench.common import Bench, CpuMeter, Credentials, emit, note
from rayfarm.sdk.files import UPLOAD_INIT
from rayfarm.sdk.urls import ApiUrl

FINISHED = frozenset({25, 30, 45})  # done, done with failures, failed
ABANDONED = 35
TEST_DONE = 40
SCENE = "D:/load/shot.blend"  # where task.json says the Blender scene is; each client uploads it once
SCENE_BYTES = b"BLENDER-v304" + bytes(range(256)) * 64  # fake nodes never open it
# operation -> weight of the client's random choice
WEIGHTS = {"submit": 14, "info": 24, "list": 10, "frames": 10, "stats": 6, "stop_start": 6, "priority": 6,
           "full_speed": 6, "overtime": 3, "limit": 3, "abort": 2, "delete": 3}


# ---------------------------------------------------------------- shared run state

@dataclass
class Run:
    """What every client and node of one run shares: the window, stop flags, figures, errors."""

    measuring: bool = False
    stop_clients: bool = False
    stop_nodes: bool = False
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    counts: Counter = field(default_factory=Counter)  # calls in the window, by name
    events: Counter = field(default_factory=Counter)  # what happened (whole run), by name
    errors: int = 0
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    lags: list[float] = field(default_factory=list)  # how late the event loop ran a 0.1 s timer, in the window

    async def watch_loop(self) -> None:
        """The load generator's own delay: every latency measured here includes it."""
        while not self.stop_nodes:
            began = time.perf_counter()
            await asyncio.sleep(0.1)
            if self.measuring:
                self.lags.append(time.perf_counter() - began - 0.1)

    def timed(self, name: str, seconds: float, latency: bool = True) -> None:
        if self.measuring:
            with self.lock:
                self.counts[name] += 1
                if latency:
                    self.latency[name].append(seconds)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors += 1
            if len(self.examples) < 10:
                self.examples.append(f"{time.strftime('%H:%M:%S')} {text[:400]}")
        if self.errors <= 5:
            note(f"error: {text[:300]}")


class Refused(Exception):
    """A Renderbus answer with a code other than 200."""

    def __init__(self, code: int, message: str):
        super().__init__(f"code {code}: {message}")
        self.code = code
        self.message = message


# ---------------------------------------------------------------- the calls, signed or through the SDK

def call_table() -> dict[str, Callable[..., tuple[str, dict, Callable[[Any], Any]]]]:
    """name -> (args -> (path, body, the same call through RayfarmAPI))."""
    u = ApiUrl
    return {
        "uploadInit": lambda: (UPLOAD_INIT, {"localPath": SCENE, "size": len(SCENE_BYTES),
                                             "sha256": hashlib.sha256(SCENE_BYTES).hexdigest()}, None),
        "createTask": lambda: (u.createTask, {"count": 1, "taskUserLevel": 50},
                               lambda api: api.task.create_task(count=1)),
        "taskJsonFile": lambda t, text: (u.taskJsonFile, {"taskId": t, "fileName": "task.json", "content": text},
                                         lambda api: api.task.upload_task_json(t, text)),
        "submitTask": lambda t: (u.task, {"taskId": t}, lambda api: api.task.submit_task(t)),
        "queryTaskInfo": lambda ids: (u.queryTaskInfo, {"taskIds": ids}, lambda api: api.query.task_info(ids)),
        "getTaskList": lambda page, size, recycle=0: (
            u.getTaskList, {"pageNum": page, "pageSize": size, **({"recycleFlag": 1} if recycle else {})},
            lambda api: api.query.get_task_list(page_num=page, page_size=size, recycle_flag=recycle or None)),
        "queryTaskFrames": lambda t, page, size: (u.queryTaskFrames, {"taskId": t, "pageNum": page, "pageSize": size},
                                                  lambda api: api.query.task_frames(t, page_num=page, page_size=size)),
        "queryAllFrameStats": lambda: (u.queryAllFrameStats, {}, lambda api: api.query.all_frame_status()),
        "stopTask": lambda ids: (u.stopTask, {"taskIds": ids}, lambda api: api.task.stop_task(ids)),
        "startTask": lambda ids: (u.startTask, {"taskIds": ids}, lambda api: api.task.start_task(ids)),
        "abandonTask": lambda ids: (u.abandonTask, {"taskIds": ids}, lambda api: api.task.abort_task(ids)),
        "deleteTask": lambda ids: (u.deleteTask, {"taskIds": ids}, lambda api: api.task.delete_task(ids)),
        "updateTaskUserLevel": lambda t, level: (u.updateTaskUserLevel, {"taskId": t, "taskUserLevel": level},
                                                 lambda api: api.task.update_priority(t, level)),
        "fullSpeedRendering": lambda ids: (u.fullSpeedRendering, {"taskIds": ids}, lambda api: api.task.full_speed(ids)),
        "setTaskOverTimeStop": lambda ids, s: (u.setTaskOverTimeStop, {"taskIds": ids, "overTime": s},
                                               lambda api: api.task.set_task_overtime_top(ids, s)),
        "updateTaskLimit": lambda t, n: (u.updateTaskLimit, {"taskId": t, "taskLimit": n},
                                         lambda api: api.task.update_task_limit(t, n)),
    }


CALLS = call_table()


class Calls:
    """One user's calls: ``await calls.call(name, *args)`` returns the answer's data or raises Refused."""

    def __init__(self, run: Run):
        self.run = run

    async def call(self, name: str, *args: Any) -> Any:
        path, body, through_sdk = CALLS[name](*args)
        began = time.perf_counter()
        try:
            return await self._send(path, body, through_sdk)
        finally:
            self.run.timed(name, time.perf_counter() - began)

    async def _send(self, path: str, body: dict, through_sdk: Callable[[Any], Any]) -> Any:
        raise NotImplementedError

    async def upload_scene(self) -> None:
        """Upload the scene the client's Blender tasks name (SCENE)."""
        raise NotImplementedError

    async def reconnect(self) -> None:
        """A new connection: after an idle pause longer than the server's keep-alive (uvicorn: 5 s), a request on
        the old one can race the server closing it (a client-side ReadError, not the farm's fault)."""

    async def aclose(self) -> None:
        pass


class SignedCalls(Calls):
    """Requests signed with the SDK's signing (Connect.signed_headers) over an asyncio HTTP client."""

    def __init__(self, run: Run, server, user: Credentials, client, kind: str):
        super().__init__(run)
        from rayfarm.sdk.connect import Connect

        self.kind = kind
        self.connect = Connect(user.access_id, user.access_key, domain=server.domain)
        self.connect.close()  # only its signing is used
        self.base = server.url
        self.client = client

    async def _send(self, path: str, body: dict, through_sdk) -> Any:
        headers = self.connect.signed_headers(path, body)
        self.run.events["signed_calls"] += 1
        response = await self.client.post(self.base + path, content=json.dumps(body).encode(), headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code} {response.text[:300]}")
        payload = response.json()
        if payload.get("code") != 200:
            raise Refused(int(payload.get("code") or 0), str(payload.get("message")))
        return payload.get("data")

    async def upload_scene(self) -> None:
        started = await self.call("uploadInit")
        if started["done"]:
            return
        offset = started["offset"]
        began = time.perf_counter()
        response = await put(self.client, f"{self.base}{started['url']}?offset={offset}", SCENE_BYTES[offset:], {})
        self.run.timed("upload:put", time.perf_counter() - began)
        if response.status_code != 200 or not response.json().get("done"):
            raise RuntimeError(f"scene upload: HTTP {response.status_code} {response.text[:300]}")

    async def reconnect(self) -> None:
        await self.client.aclose()
        self.client = new_client(self.kind)

    async def aclose(self) -> None:
        await self.client.aclose()


class SdkCalls(Calls):
    """The same calls through rayfarm.sdk.RayfarmAPI (retries off), each run in a thread."""

    def __init__(self, run: Run, server, user: Credentials, pool: ThreadPoolExecutor, scene: Path):
        super().__init__(run)
        from rayfarm.sdk import RayfarmAPI

        self.connect = lambda: RayfarmAPI(user.access_id, user.access_key, domain=server.domain, retries=0)
        self.api = self.connect()
        self.pool = pool
        self.scene = scene

    async def _send(self, path: str, body: dict, through_sdk) -> Any:
        from rayfarm.sdk.errors import RayfarmAPIError

        self.run.events["sdk_calls"] += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, through_sdk, self.api)
        except RayfarmAPIError as exc:
            raise Refused(exc.code, exc.message) from None

    async def upload_scene(self) -> None:
        began = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(self.pool, self.api.files.upload, str(self.scene), SCENE)
        self.run.timed("upload (SDK)", time.perf_counter() - began)

    async def reconnect(self) -> None:
        self.api.close()
        self.api = self.connect()

    async def aclose(self) -> None:
        self.api.close()


# ---------------------------------------------------------------- a client: one user's script

def task_text(kind: str, frames: int, per_chunk: int) -> str:
    if kind == "command":
        return common.task_json(f"1-{frames}", per_chunk, command=["true"])
    text = json.loads(common.task_json(f"1-{frames}", per_chunk, software="Blender", scene=SCENE))
    if kind == "test":  # the first frame renders first, then the task waits for full speed
        text["task_info"].update(pre_frames="100", stop_after_test="1")
    return json.dumps(text)


@dataclass
class Task:
    id: int
    kind: str  # command, blender, test
    status: int = 0
    full_speed: bool = False  # test tasks: full speed asked
    aborted: bool = False
    deleted: bool = False

    @property
    def open(self) -> bool:
        return not self.aborted and self.status not in FINISHED

    @property
    def paused(self) -> bool:
        return self.kind == "test" and not self.full_speed and self.open


class Client:
    def __init__(self, index: int, user: Credentials, calls: Calls, run: Run, rng: random.Random, think: float,
                 open_tasks: int):
        self.index, self.user, self.calls, self.run, self.rng = index, user, calls, run, rng
        self.think, self.max_open = think, open_tasks
        self.created: list[int] = []  # every id createTask answered
        self.tasks: dict[int, Task] = {}  # submitted ones
        self.scene_uploaded = False

    # ---- choices
    def _open(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.open]

    def _pick(self, tasks: list[Task]) -> Task | None:
        return self.rng.choice(tasks) if tasks else None

    def _live(self) -> list[Task]:
        return [t for t in self.tasks.values() if not t.deleted]

    async def loop(self) -> None:
        ops = list(WEIGHTS)
        weights = [WEIGHTS[o] for o in ops]
        while not self.run.stop_clients:
            op = self.rng.choices(ops, weights)[0]
            try:
                await getattr(self, "op_" + op)()
            except Exception as exc:  # every failure is counted; the script goes on
                self.run.error(f"client {self.index} {op}: {exc!r}")
            await asyncio.sleep(self.rng.uniform(0, 2 * self.think))

    # ---- operations
    async def op_submit(self) -> None:
        if len(self._open()) >= self.max_open:
            return await self.op_info()
        kind = self.rng.choices(["command", "blender", "test"], [5, 3, 2])[0]
        if kind != "command" and not self.scene_uploaded:
            await self.calls.upload_scene()
            self.scene_uploaded = True
        task_id = (await self.calls.call("createTask"))["taskIdList"][0]
        self.created.append(task_id)
        frames = self.rng.randint(3 if kind == "test" else 1, 8)
        await self.calls.call("taskJsonFile", task_id, task_text(kind, frames, self.rng.choice([1, 1, 2])))
        await self.calls.call("submitTask", task_id)
        self.tasks[task_id] = Task(task_id, kind)
        self.run.events["tasks_submitted"] += 1

    async def refresh(self, ids: list[int]) -> None:
        data = await self.calls.call("queryTaskInfo", ids)
        for item in data["items"]:
            self.tasks[item["id"]].status = item["taskStatus"]

    async def op_info(self) -> None:
        ids = [t.id for t in self._open()][:5]
        other = self._pick(list(self.tasks.values()))
        if other and other.id not in ids:
            ids.append(other.id)
        if not ids:
            return await self.op_list()
        await self.refresh(ids)

    async def op_list(self) -> None:
        await self.calls.call("getTaskList", 1, self.rng.choice([10, 50, 100]))

    async def op_frames(self) -> None:
        task = self._pick(self._live())
        if task is None:
            return await self.op_stats()
        await self.calls.call("queryTaskFrames", task.id, 1, 100)

    async def op_stats(self) -> None:
        await self.calls.call("queryAllFrameStats")

    async def _may_be_finished(self, name: str, task: Task) -> bool:
        """Stop and abort race with the task finishing: their 718 is right only if it did finish."""
        try:
            await self.calls.call(name, [task.id])
            return True
        except Refused as exc:
            if exc.code != 718:
                raise
            await self.refresh([task.id])
            if task.status not in FINISHED:
                raise RuntimeError(f"{name} refused for task {task.id} in status {task.status}: {exc}") from None
            self.run.events[f"{name}_refused_finished"] += 1
            return False

    async def op_stop_start(self) -> None:
        task = self._pick(self._open())
        if task is None:
            return await self.op_list()
        if await self._may_be_finished("stopTask", task):
            await asyncio.sleep(self.rng.uniform(0, 0.3))
            await self.calls.call("startTask", [task.id])
            self.run.events["stop_start"] += 1

    async def op_abort(self) -> None:
        task = self._pick(self._open())
        if task is None:
            return await self.op_list()
        if await self._may_be_finished("abandonTask", task):
            task.aborted = True
            task.status = ABANDONED
            self.run.events["aborted"] += 1

    async def op_delete(self) -> None:
        task = self._pick([t for t in self._live() if not t.open])
        if task is None:
            return await self.op_info()
        await self.calls.call("deleteTask", [task.id])
        task.deleted = True
        self.run.events["deleted"] += 1

    async def op_priority(self) -> None:
        task = self._pick(self._live())
        if task:
            await self.calls.call("updateTaskUserLevel", task.id, self.rng.choice([40, 50, 60, 70]))

    async def op_full_speed(self) -> None:
        task = self._pick([t for t in self.tasks.values() if t.paused])
        if task is None:
            return await self.op_info()
        await self.full_speed(task)

    async def full_speed(self, task: Task) -> None:
        await self.calls.call("fullSpeedRendering", [task.id])
        task.full_speed = True
        self.run.events["full_speed"] += 1

    async def op_overtime(self) -> None:
        task = self._pick(self._live())
        if task:  # far beyond any chunk of this run: the call is exercised, no task is stopped by it
            await self.calls.call("setTaskOverTimeStop", [task.id], 3600)

    async def op_limit(self) -> None:
        task = self._pick(self._live())
        if task:
            await self.calls.call("updateTaskLimit", task.id, self.rng.choice([0, 2, 5]))

    async def finish(self) -> None:
        """After the window: paused tasks get full speed, so that every task can finish."""
        for task in [t for t in self.tasks.values() if t.paused]:
            try:
                await self.full_speed(task)
            except Exception as exc:
                self.run.error(f"client {self.index} final full speed: {exc!r}")


# ---------------------------------------------------------------- a fake render node

def tiny_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 80, 20)).save(out, "PNG")
    return out.getvalue()


async def put(client, url: str, content: bytes, headers: dict):
    if isinstance(client, common.RawClient):
        return await client.request("PUT", url, content, headers, None)
    return await client.put(url, content=content, headers=headers)


class Node:
    """A render node that renders nothing (real protocol), and its own record of every result it reported."""

    def __init__(self, name: str, base: str, token: str, clients: tuple, run: Run, rng: random.Random,
                 render: float, fail_rate: float, png: bytes):
        self.name, self.base, self.run, self.rng = name, base, run, rng
        self.client, self.beat_client = clients  # leases and results on one connection, heartbeats on another
        self.render, self.fail_rate, self.png = render, fail_rate, png
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.worker_id: int | None = None
        self.session = ""
        self.beat_idle, self.beat_busy = 3.0, 1.0
        self.current: str | None = None
        self.cancel = asyncio.Event()
        self.records: list[dict] = []  # one per result reported: lease, frame, result, accepted

    async def post(self, name: str, body: dict, client=None, timeout: float = 60.0) -> dict:
        began = time.perf_counter()
        response = await (client or self.client).post(f"{self.base}/v1/worker/{name}", content=json.dumps(body).encode(),
                                                      headers=self.headers, timeout=timeout)
        if response.status_code != 200:
            raise RuntimeError(f"node {self.name} {name}: HTTP {response.status_code} {response.text[:300]}")
        answer = response.json()
        # an empty lease is a wait for work (up to "wait"), not a latency
        self.run.timed("node:" + name, time.perf_counter() - began, name != "lease" or bool(answer.get("leases")))
        return answer

    async def register(self) -> None:
        answer = await self.post("register", {
            "name": self.name, "hostname": self.name, "slots": 1, "cores": 1, "memory": 0, "gpu": "",
            "software": {"command": "", "blender": "3.4.1"}, "tags": [], "version": "load"})
        self.worker_id, self.session = answer["workerId"], answer["session"]
        self.beat_idle = float(answer["heartbeatSeconds"])
        self.beat_busy = float(answer["busyHeartbeatSeconds"])

    async def heartbeats(self) -> None:
        while not self.run.stop_nodes:
            await asyncio.sleep(self.beat_busy if self.current else self.beat_idle)
            lease = self.current
            try:
                answer = await self.post("heartbeat", {
                    "workerId": self.worker_id, "session": self.session, "cpu": 1.0, "memUsed": 0,
                    "running": [{"leaseId": lease, "progress": 50.0}] if lease else []}, self.beat_client)
            except Exception as exc:
                self.run.error(f"node {self.name} heartbeat: {exc!r}")
                continue
            if lease and lease in answer["stop"] and self.current == lease:
                self.cancel.set()

    async def work_loop(self) -> None:
        while not self.run.stop_nodes:
            try:
                answer = await self.post("lease", {"workerId": self.worker_id, "session": self.session, "max": 1,
                                                   "wait": 1.0})
                for lease in answer["leases"]:
                    await self.work(lease)
            except Exception as exc:
                self.run.error(f"node {self.name}: {exc!r}")
                await asyncio.sleep(0.2)

    async def work(self, lease: dict) -> None:
        lease_id = lease["leaseId"]
        self.current, self.cancel = lease_id, asyncio.Event()
        record = {"node": self.worker_id, "lease": lease_id, "frame": lease["frameId"], "task": lease["taskId"],
                  "frames": (lease["end"] - lease["start"]) // lease["step"] + 1}
        try:
            try:
                await asyncio.wait_for(self.cancel.wait(), self.rng.uniform(0.5, 1.5) * self.render)
                self.run.events["node_stopped_by_server"] += 1  # told to stop: report nothing more
                return
            except TimeoutError:
                pass
            outputs = []
            if lease["render"].get("software") == "blender":
                name = f"shot_{lease['start']:04d}.png"
                began = time.perf_counter()
                response = await put(self.client, f"{self.base}/v1/worker/output/{lease_id}/{name}", self.png,
                                     {**self.headers, "Content-Type": "application/octet-stream",
                                      "X-Worker-Id": str(self.worker_id), "X-Worker-Session": self.session})
                if response.status_code != 200:
                    raise RuntimeError(f"node {self.name} output: HTTP {response.status_code} {response.text[:300]}")
                self.run.timed("node:output", time.perf_counter() - began)
                if not response.json()["accepted"]:
                    self.run.events["node_output_refused"] += 1  # the lease went away: drop the chunk
                    return
                outputs.append(name)
            result = "failed" if self.rng.random() < self.fail_rate else "done"
            answer = await self.post("complete", {
                "workerId": self.worker_id, "session": self.session, "leaseId": lease_id, "result": result,
                "error": "simulated render failure" if result == "failed" else "", "executeSeconds": 0.1,
                "outputs": outputs})
            self.records.append({**record, "result": result, "accepted": bool(answer["accepted"]),
                                 "outputs": outputs, "at": time.monotonic()})
        finally:
            self.current = None


# ---------------------------------------------------------------- set-up

class LoadBench(Bench):
    """A Bench that can run on a database URL made by someone else (the test suite's PostgreSQL)."""

    def __init__(self, database: str, keep: bool, database_url: str | None = None):
        super().__init__(database if database_url is None else "sqlite", keep, "load")
        self.given_url = database_url
        self.kind = database

    def __enter__(self) -> LoadBench:
        super().__enter__()
        if self.given_url:
            self.database_url = self.given_url
        return self


def make_users(bench: Bench, count: int) -> list[Credentials]:
    """``count`` users allowed to run commands, made in one transaction (a CLI call each would take minutes),
    and the worker token read on the way (saves a CLI start)."""
    from rayfarm.store import users as users_store
    from rayfarm.store import workers as workers_store

    farm = bench.farm()
    try:
        with farm.db.write() as conn:
            made = [users_store.create(conn, farm.keys, f"load{i:03d}", allow_commands=True) for i in range(count)]
            bench._token = workers_store.worker_token(conn, farm.keys)
    finally:
        farm.db.dispose()
    return [Credentials(user.id, user.name, user.access_id, key) for user, key in made]


# ---------------------------------------------------------------- the run

@dataclass
class Options:
    clients: int = 100
    workers: int = 50
    seconds: float = 60.0
    database: str = "sqlite"
    database_url: str | None = None
    sdk_clients: int = 10
    think: float = 0.25
    render: float = 0.2
    fail_rate: float = 0.02
    open_tasks: int = 2
    client: str = "httpx"
    seed: int = 1
    server_processes: int = 1
    drain_timeout: float = 120.0
    quiet_max: float | None = None
    keep: bool = False


def new_client(kind: str):
    return common.RawClient() if kind == "raw" else common.async_client()


async def drive(bench: Bench, server, token: str, users: list[Credentials], opts: Options, meter: CpuMeter) -> dict:
    run = Run()
    rng = random.Random(opts.seed)
    pool = ThreadPoolExecutor(max(1, opts.sdk_clients), thread_name_prefix="sdk")
    scene = bench.tmp / "shot.blend"
    scene.write_bytes(SCENE_BYTES)
    clients: list[Client] = []
    for index, user in enumerate(users):
        calls = (SdkCalls(run, server, user, pool, scene) if index < opts.sdk_clients
                 else SignedCalls(run, server, user, new_client(opts.client), opts.client))
        clients.append(Client(index, user, calls, run, random.Random(rng.random()), opts.think, opts.open_tasks))
    png = tiny_png()
    nodes = [Node(f"load-node{i:03d}", server.url, token, (new_client(opts.client), new_client(opts.client)), run,
                  random.Random(rng.random()), opts.render, opts.fail_rate, png) for i in range(opts.workers)]
    figures: dict[str, Any] = {}
    try:
        for start in range(0, len(nodes), 25):
            await asyncio.gather(*(n.register() for n in nodes[start:start + 25]))
        node_tasks = [asyncio.create_task(n.work_loop()) for n in nodes]
        node_tasks += [asyncio.create_task(n.heartbeats()) for n in nodes]
        client_tasks = [asyncio.create_task(c.loop()) for c in clients]
        node_tasks.append(asyncio.create_task(run.watch_loop()))
        await asyncio.sleep(min(3.0, opts.seconds / 8))  # warm-up: every loop running, some tasks queued
        meter.start()
        run.measuring = True
        began = time.monotonic()
        await asyncio.sleep(opts.seconds)
        run.measuring = False
        window = time.monotonic() - began
        figures["cpu_s"] = meter.stop()
        ended = time.monotonic()
        run.stop_clients = True
        await asyncio.wait_for(asyncio.gather(*client_tasks), 120)
        await asyncio.gather(*(c.finish() for c in clients))
        drained = time.monotonic()
        stuck = await asyncio.to_thread(wait_drained, bench.database_url, clients, opts.drain_timeout)
        figures["drain_s"] = round(time.monotonic() - drained, 2)
        run.stop_nodes = True
        await asyncio.wait_for(asyncio.gather(*node_tasks), 30)
        figures["stuck_tasks"] = stuck
        api = await api_snapshot(clients, run)
    finally:
        run.stop_clients = run.stop_nodes = True
        for client in clients:
            await client.calls.aclose()
        for node in nodes:
            await node.client.aclose()
            await node.beat_client.aclose()
        pool.shutdown(wait=False)
    records = [r for n in nodes for r in n.records]
    done_in_window = [r for r in records if r["accepted"] and r["result"] == "done" and began <= r["at"] <= ended]
    user_calls = {k: v for k, v in run.counts.items() if not k.startswith("node:")}
    node_calls = {k: v for k, v in run.counts.items() if k.startswith("node:")}
    every_user_call = [s for k, v in run.latency.items() if not k.startswith("node:") for s in v]
    figures.update({
        "window_s": round(window, 3),
        "requests_per_s": round(sum(user_calls.values()) / window, 1),
        "node_requests_per_s": round(sum(node_calls.values()) / window, 1),
        "chunks_per_s": round(len(done_in_window) / window, 1),
        "frames_per_s": round(sum(r["frames"] for r in done_in_window) / window, 1),
        "p50_ms": common.ms(common.percentile(every_user_call, 50)),
        "p99_ms": common.ms(common.percentile(every_user_call, 99)),
        "calls": {name: {"n": n, "per_s": round(n / window, 1), **latency_figures(run.latency.get(name, []))}
                  for name, n in sorted(run.counts.items())},
        "client_loop_lag_ms": {"p50": common.ms(common.percentile(run.lags, 50)),
                               "p99": common.ms(common.percentile(run.lags, 99)), "max": common.ms(max(run.lags or [0]))},
        "errors": run.errors, "error_examples": run.examples, "events": dict(sorted(run.events.items())),
    })
    return {"figures": figures, "clients": clients, "records": records, "api": api}


def latency_figures(values: list[float]) -> dict:
    if not values:
        return {}
    return {"p50_ms": common.ms(common.percentile(values, 50)), "p99_ms": common.ms(common.percentile(values, 99)),
            "max_ms": common.ms(max(values))}


def wait_drained(url: str, clients: list[Client], timeout: float) -> list[int]:
    """Wait until every task the clients submitted is finished or abandoned; the ids still unfinished."""
    from sqlalchemy import create_engine, select

    from rayfarm.store.schema import tasks

    ids = [t for c in clients for t in c.tasks]
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with engine.connect() as conn:
                rows = conn.execute(select(tasks.c.id, tasks.c.status).where(tasks.c.id.in_(ids))).all() if ids else []
            open_ids = sorted(i for i, status in rows if status not in FINISHED | {ABANDONED})
            if not open_ids or time.monotonic() > deadline:
                return open_ids
            time.sleep(0.25)
    finally:
        engine.dispose()


async def api_snapshot(clients: list[Client], run: Run) -> dict[int, dict | None]:
    """What the API says, per client: task info, every frame of every task, frame totals, task lists."""
    async def one(client: Client) -> dict | None:
        try:
            return await read(client)
        except Exception as exc:
            run.error(f"client {client.index} reading back: {exc!r}")
            return None

    async def read(client: Client) -> dict:
        calls = client.calls
        await calls.reconnect()  # idle through the drain
        ids = list(client.tasks)
        info = {}
        for start in range(0, len(ids), 500):
            for item in (await calls.call("queryTaskInfo", ids[start:start + 500]))["items"]:
                info[item["id"]] = item
        frames = {}
        for task_id in ids:
            frames[task_id], page = [], 1
            while items := (await calls.call("queryTaskFrames", task_id, page, 1000))["items"]:
                frames[task_id] += items
                page += 1
        listed = {}
        for recycle in (0, 1):
            found, page = [], 1
            while items := (await calls.call("getTaskList", page, 1000, recycle))["items"]:
                found += [item["id"] for item in items]
                page += 1
            listed[recycle] = found
        stats = await calls.call("queryAllFrameStats")
        return {"info": info, "frames": frames, "listed": listed[0], "recycled": listed[1], "stats": stats}

    results = []
    for start in range(0, len(clients), 25):
        results += await asyncio.gather(*(one(c) for c in clients[start:start + 25]))
    return {c.index: r for c, r in zip(clients, results, strict=True)}


# ---------------------------------------------------------------- reconciliation

def db_snapshot(url: str, user_ids: list[int]) -> dict:
    from sqlalchemy import create_engine, select

    from rayfarm.store.schema import frames, tasks

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            task_rows = conn.execute(select(tasks).where(tasks.c.user_id.in_(user_ids))).all()
            frame_rows = conn.execute(select(frames).where(frames.c.task_id.in_([t.id for t in task_rows]))).all()
    finally:
        engine.dispose()
    return {"tasks": {t.id: t for t in task_rows}, "frames": frame_rows}


class Checks:
    def __init__(self):
        self.results: dict[str, bool] = {}
        self.mismatches: list[str] = []

    def check(self, name: str, problems: list[str]) -> None:
        self.results[name] = not problems
        self.mismatches += [f"{name}: {p}" for p in problems[:10]]


def frame_counts(rows) -> dict[str, int]:
    """Frames (not chunks) by the API's buckets."""
    n: Counter = Counter()
    for f in rows:
        count = (f.end_frame - f.start_frame) // f.step + 1
        bucket = {2: "executingFrames", 4: "doneFrames", 5: "failedFrames", 11: "failedFrames",
                  3: "abortFrames"}.get(f.status, "waitingCount")
        n[bucket] += count
        n["totalFrames"] += count
    return n


def reconcile(bench: Bench, users: list[Credentials], clients: list[Client], records: list[dict],
              api: dict[int, dict]) -> dict:
    from rayfarm.domain.paths import output_name

    db = db_snapshot(bench.database_url, [u.user_id for u in users])
    checks = Checks()
    by_task: dict[int, list] = defaultdict(list)
    for f in db["frames"]:
        by_task[f.task_id].append(f)

    # every task a client created is in the database, none more, each submitted and in its expected end state
    created = {t for c in clients for t in c.created}
    problems = [f"task {t} in the database, not created by any client" for t in set(db["tasks"]) - created]
    problems += [f"task {t} created but not in the database" for t in created - set(db["tasks"])]
    for c in clients:
        problems += [f"task {t} created but not submitted" for t in c.created if t not in c.tasks]
        for task in c.tasks.values():
            row = db["tasks"].get(task.id)
            if row is None:
                continue
            if task.aborted and row.status != ABANDONED:
                problems.append(f"task {task.id} aborted but status {row.status}")
            if not task.aborted and row.status not in FINISHED:
                problems.append(f"task {task.id} ended in status {row.status}")
            if bool(row.is_deleted) != task.deleted:
                problems.append(f"task {task.id} deleted {task.deleted} but is_deleted {row.is_deleted}")
    checks.check("tasks_accounted", problems)

    # the API's view equals the database's
    info_problems, frame_problems, stats_problems, list_problems = [], [], [], []
    for c in clients:
        snap = api[c.index]
        if snap is None:
            info_problems.append(f"user {c.user.name}: the API could not be read back")
            continue
        for task_id in c.tasks:
            row, item = db["tasks"][task_id], snap["info"].get(task_id)
            want = frame_counts(by_task[task_id])
            got = {k: item[k] for k in ("executingFrames", "doneFrames", "failedFrames", "abortFrames", "waitingCount",
                                        "totalFrames")} if item else None
            if got is None or got != {k: want.get(k, 0) for k in got} or item["taskStatus"] != row.status \
                    or row.total_frames != want["totalFrames"]:
                info_problems.append(f"task {task_id}: API {got} status {item and item['taskStatus']}, "
                                     f"database {dict(want)} status {row.status} total {row.total_frames}")
            api_frames = {f["id"]: (f["frameStatus"], f["attempts"], f["nodeId"]) for f in snap["frames"][task_id]}
            db_frames = {f.id: (f.status, f.attempts, f.node_id) for f in by_task[task_id]}
            if api_frames != db_frames:
                frame_problems.append(f"task {task_id}: API {api_frames} database {db_frames}")
        live = [f for t in c.tasks for f in by_task[t] if not db["tasks"][t].is_deleted]
        want = frame_counts(live)
        want_stats = {"executingFramesTotal": want["executingFrames"], "doneFramesTotal": want["doneFrames"],
                      "failedFramesTotal": want["failedFrames"], "waitingFramesTotal": want["waitingCount"],
                      "abandonFramesTotal": want["abortFrames"], "totalFrames": want["totalFrames"]}
        if snap["stats"] != want_stats:
            stats_problems.append(f"user {c.user.name}: API {snap['stats']} database {want_stats}")
        kept = sorted(t.id for t in c.tasks.values() if not t.deleted)
        gone = sorted(t.id for t in c.tasks.values() if t.deleted)
        if sorted(snap["listed"]) != kept or sorted(snap["recycled"]) != gone:
            list_problems.append(f"user {c.user.name}: listed {sorted(snap['listed'])} recycled "
                                 f"{sorted(snap['recycled'])}, expected {kept} and {gone}")
    checks.check("api_task_info", info_problems)
    checks.check("api_task_frames", frame_problems)
    checks.check("api_frame_stats", stats_problems)
    checks.check("api_task_list", list_problems)

    # the nodes' own records against the database: one accepted result per done chunk, from the node that has it
    accepted_done = [r for r in records if r["accepted"] and r["result"] == "done"]
    per_frame = Counter(r["frame"] for r in accepted_done)
    problems = [f"frame {f} reported done and accepted {n} times" for f, n in per_frame.items() if n > 1]
    node_done = {(r["frame"], r["node"]) for r in accepted_done}
    db_done = {(f.id, f.node_id) for f in db["frames"] if f.status == 4}
    problems += [f"frame {f} done by node {n} in the database, no node reported it" for f, n in db_done - node_done]
    problems += [f"frame {f} reported done by node {n}, not so in the database" for f, n in node_done - db_done]
    failures = sum(1 for r in records if r["accepted"] and r["result"] == "failed")
    attempts = sum(f.attempts for f in db["frames"])
    if failures != attempts:
        problems.append(f"nodes reported {failures} accepted failures, the database counts {attempts} attempts")
    checks.check("nodes_vs_database", problems)

    done_frames = {"nodes": sum(r["frames"] for r in accepted_done),
                   "database": frame_counts([f for f in db["frames"] if f.status == 4])["doneFrames"],
                   "api": sum(item["doneFrames"] for snap in api.values() if snap for item in snap["info"].values())}
    checks.check("done_frames_equal", [] if len(set(done_frames.values())) == 1 else [str(done_frames)])

    # every done Blender chunk's output is in the user's output storage
    storage = bench.data_dir / "storage"
    problems = []
    for f in db["frames"]:
        row = db["tasks"][f.task_id]
        if f.status == 4 and row.software == "blender":
            folder = storage / str(row.user_id) / "output" / output_name(row.id, row.scene_name or "scene")
            path = folder / f"shot_{f.start_frame:04d}.png"
            if not path.is_file():
                problems.append(f"frame {f.id}: no {path.name}")
    checks.check("outputs_stored", problems)

    statuses = Counter(t.status for t in db["tasks"].values())
    return {
        "reconciled": all(checks.results.values()), "checks": checks.results, "mismatches": checks.mismatches[:30],
        "tasks": {"created": len(created), "done": statuses[25], "done_with_failures": statuses[30],
                  "failed": statuses[45], "aborted": statuses[ABANDONED],
                  "deleted": sum(1 for t in db["tasks"].values() if t.is_deleted),
                  "by_kind": dict(Counter(t.kind for c in clients for t in c.tasks.values()))},
        "chunks": {"done": len(db_done), "failed_results": failures,
                   "rejected_results": sum(1 for r in records if not r["accepted"]),
                   "frames_done": done_frames["database"]},
    }


def server_errors(server) -> list[str]:
    """Failures the server logged (one ERROR line each), or the tracebacks of anything it printed unlogged."""
    lines = server.log().splitlines()
    return [line for line in lines if " ERROR " in line] or [line for line in lines if line.startswith("Traceback")]


def run_load(opts: Options) -> dict:
    """One load run; the figures, the reconciliation and every error (see the module's docstring)."""
    budget = 300 + opts.seconds * 3 + opts.drain_timeout + opts.clients * 2
    with common.deadline(budget, "load"), LoadBench(opts.database, opts.keep, opts.database_url) as bench:
        server = bench.start_server(opts.server_processes)
        users = make_users(bench, opts.clients)
        token = bench.token()
        note(f"{opts.clients} users, {opts.workers} nodes; load for {opts.seconds:g} s")
        quiet = common.wait_quiet(opts.quiet_max) if opts.quiet_max != 0 else 0.0
        groups = {"server": server.pids, "client": common.self_pids}
        if opts.database == "postgres":
            groups["postgres"] = common.postgres_pids
        out = asyncio.run(drive(bench, server, token, users, opts, CpuMeter(**groups)))
        result = reconcile(bench, users, out["clients"], out["records"], out["api"])
        logged = server_errors(server)
    figures = out["figures"]
    errors, examples = figures.pop("errors"), figures.pop("error_examples")
    if figures["stuck_tasks"]:
        errors += 1
        examples.append(f"tasks not finished {opts.drain_timeout:g} s after the load: {figures['stuck_tasks'][:20]}")
    return {"database": opts.database, "server_processes": opts.server_processes, "clients": opts.clients,
            "sdk_clients": min(opts.sdk_clients, opts.clients), "workers": opts.workers, "client": opts.client,
            "think_s": opts.think, "render_s": opts.render, "fail_rate": opts.fail_rate, "seed": opts.seed,
            "errors": errors, "server_errors": len(logged), "error_examples": examples + logged[:5], **result,
            **figures, "quiet_wait_s": quiet}


def main() -> None:
    parser = common.base_parser(__doc__)
    defaults = Options()
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--sdk-clients", type=int, default=defaults.sdk_clients,
                        help="clients that call through rayfarm.sdk.RayfarmAPI in threads (the rest sign their own)")
    parser.add_argument("--think", type=float, default=defaults.think, help="mean pause between a client's operations")
    parser.add_argument("--render", type=float, default=defaults.render, help="mean seconds a fake chunk takes")
    parser.add_argument("--fail-rate", type=float, default=defaults.fail_rate)
    parser.add_argument("--open-tasks", type=int, default=defaults.open_tasks,
                        help="unfinished tasks a client keeps at most")
    parser.add_argument("--client", choices=("httpx", "raw"), default=defaults.client)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--drain-timeout", type=float, default=defaults.drain_timeout)
    args = parser.parse_args()
    opts = Options(clients=args.clients, workers=args.workers, seconds=args.seconds, database=args.database,
                   sdk_clients=args.sdk_clients, think=args.think, render=args.render, fail_rate=args.fail_rate,
                   open_tasks=args.open_tasks, client=args.client, seed=args.seed,
                   server_processes=args.server_processes, drain_timeout=args.drain_timeout, keep=args.keep)
    emit("load", run_load(opts))


if __name__ == "__main__":
    common.run(main)
