"""The clients of bench/load.py: one user's script each, calling through signed requests or through rayfarm.sdk,
and the run state every client and node of a load run shares (figures, errors, stop flags)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.clients import Refused, SignedAsync, make_client
from bench.harness import note
from rayfarm.sdk.files import UPLOAD_INIT
from rayfarm.sdk.urls import ApiUrl
from tests.support import taskjson
from tests.support.processes import Credentials

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
    """Requests signed with the SDK's signing (bench.clients.SignedAsync) over an asyncio HTTP client."""

    def __init__(self, run: Run, server, user: Credentials, client, kind: str):
        super().__init__(run)
        self.kind = kind
        self.signed = SignedAsync(server, user, client)

    async def _send(self, path: str, body: dict, through_sdk) -> Any:
        self.run.events["signed_calls"] += 1
        return await self.signed.post(path, body)

    async def upload_scene(self) -> None:
        started = await self.call("uploadInit")
        if started["done"]:
            return
        offset = started["offset"]
        began = time.perf_counter()
        response = await self.signed.client.put(f"{self.signed.base}{started['url']}?offset={offset}",
                                                content=SCENE_BYTES[offset:], headers={})
        self.run.timed("upload:put", time.perf_counter() - began)
        if response.status_code != 200 or not response.json().get("done"):
            raise RuntimeError(f"scene upload: HTTP {response.status_code} {response.text[:300]}")

    async def reconnect(self) -> None:
        await self.signed.client.aclose()
        self.signed.client = make_client(self.kind)

    async def aclose(self) -> None:
        await self.signed.client.aclose()


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
        return taskjson.text(taskjson.command(["true"], f"1-{frames}", per_chunk=per_chunk))
    test = {"pre_frames": "100", "stop_after_test": "1"} if kind == "test" else {}  # test: frame 1, then a pause
    return taskjson.text(taskjson.blender(SCENE, f"1-{frames}", per_chunk=per_chunk, cg_version="3.4", **test))


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
