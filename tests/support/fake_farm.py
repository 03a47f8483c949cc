"""A minimal fake of the farm's worker API (docs/worker-protocol.md) on loopback, for the real worker agent's tests."""

import asyncio
import hashlib
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.processes import free_port, wait_for

TOKEN = "worker-token"


@dataclass
class FakeFarm:
    heartbeat_seconds: float = 0.3
    busy_heartbeat_seconds: float = 0.2
    lease_seconds: float = 30.0
    queue: list[dict] = field(default_factory=list)  # leases to hand out
    registers: list[dict] = field(default_factory=list)
    heartbeats: list[dict] = field(default_factory=list)
    completes: list[dict] = field(default_factory=list)
    uploads: dict[str, dict[str, bytes]] = field(default_factory=dict)
    scenes: dict[str, bytes] = field(default_factory=dict)  # frameId -> bytes
    valid: dict[str, int] = field(default_factory=dict)  # leaseId -> workerId
    stop: set[str] = field(default_factory=set)  # leases to list in the heartbeat's `stop`
    reject: set[str] = field(default_factory=set)  # leases whose uploads are answered `accepted: false`
    refused: list[tuple[str, str]] = field(default_factory=list)  # (leaseId, fileName) answered `accepted: false`
    conflicts: int = 0  # answer the next N heartbeats with 409
    events: list[tuple[str, str]] = field(default_factory=list)  # ("lease" | "upload" | "complete", leaseId) in order
    hold_outputs: int = 0  # an output upload waits (up to 10 s) until this many leases were given out
    sessions: dict[int, str] = field(default_factory=dict)
    workers: dict[str, int] = field(default_factory=dict)
    counter: Any = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_lease(self, lease_id: str, render: dict, start: int = 1, end: int = 1, step: int = 1,
                  job_stop_time: int = 0, scene: dict | None = None) -> None:
        with self.lock:
            self.queue.append({"leaseId": lease_id, "frameId": lease_id, "taskId": 1, "userId": 1, "frameIndex": 0,
                               "start": start, "end": end, "step": step, "attempt": 1, "jobStopTime": job_stop_time,
                               "leaseExpires": time.time() + self.lease_seconds, "render": render,
                               "outputName": "1_out", "scene": scene or {"url": "", "sha256": "", "size": 0,
                                                                          "path": ""}})

    def add_scene(self, frame_id: str, data: bytes) -> dict:
        self.scenes[frame_id] = data
        return {"url": f"/v1/worker/scene/{frame_id}", "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data), "path": ""}

    def running_ids(self) -> list[list[str]]:
        return [[item["leaseId"] for item in beat["running"]] for beat in self.heartbeats]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def make_app(farm: FakeFarm) -> Starlette:
    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def stale(body: dict) -> bool:
        return farm.sessions.get(body.get("workerId")) != body.get("session")

    async def register(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "The worker token is missing or wrong.")
        body = await request.json()
        with farm.lock:
            farm.registers.append(body)
            worker_id = farm.workers.setdefault(body["name"], len(farm.workers) + 1)
            farm.sessions[worker_id] = f"s{next(farm.counter)}"
            for lease_id, owner in list(farm.valid.items()):
                if owner == worker_id:
                    del farm.valid[lease_id]
        return JSONResponse({"workerId": worker_id, "session": farm.sessions[worker_id],
                             "leaseSeconds": farm.lease_seconds, "heartbeatSeconds": farm.heartbeat_seconds,
                             "busyHeartbeatSeconds": farm.busy_heartbeat_seconds})

    async def lease(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "The worker token is missing or wrong.")
        body = await request.json()
        if stale(body):
            return _error(409, "This session is stale; register again.")
        deadline = time.monotonic() + float(body.get("wait") or 0)
        while True:
            with farm.lock:
                given = farm.queue[: int(body.get("max") or 1)]
                del farm.queue[: len(given)]
                for item in given:
                    farm.valid[item["leaseId"]] = body["workerId"]
                    farm.events.append(("lease", item["leaseId"]))
            if given or time.monotonic() >= deadline:
                return JSONResponse({"leases": given})
            await asyncio.sleep(0.05)

    async def heartbeat(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "The worker token is missing or wrong.")
        body = await request.json()
        with farm.lock:
            if farm.conflicts > 0:
                farm.conflicts -= 1
                return _error(409, "This session is stale; register again.")
            if stale(body):
                return _error(409, "This session is stale; register again.")
            farm.heartbeats.append(body)
            stop = [item["leaseId"] for item in body["running"]
                    if item["leaseId"] in farm.stop or item["leaseId"] not in farm.valid]
        return JSONResponse({"stop": stop, "leaseExpires": time.time() + farm.lease_seconds, "disabled": False,
                             "draining": False})

    async def output(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "The worker token is missing or wrong.")
        lease_id, name = request.path_params["lease_id"], request.path_params["name"]
        data = await request.body()
        deadline = time.monotonic() + 10
        while sum(kind == "lease" for kind, _ in farm.events) < farm.hold_outputs and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        farm.events.append(("upload", lease_id))
        if lease_id not in farm.valid or lease_id in farm.reject:
            farm.refused.append((lease_id, name))
            return JSONResponse({"accepted": False})
        farm.uploads.setdefault(lease_id, {})[name] = data
        return JSONResponse({"accepted": True, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})

    async def complete(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "The worker token is missing or wrong.")
        body = await request.json()
        if stale(body):
            return _error(409, "This session is stale; register again.")
        with farm.lock:
            accepted = farm.valid.pop(body["leaseId"], None) is not None
            farm.events.append(("complete", body["leaseId"]))
            if accepted:
                farm.completes.append(body)
        return JSONResponse({"accepted": accepted})

    async def scene(request: Request) -> Response:
        data = farm.scenes.get(request.path_params["frame_id"])
        if data is None or not authorized(request):
            return _error(404, "No such scene.")
        return Response(data, headers={"X-Sha256": hashlib.sha256(data).hexdigest()},
                        media_type="application/octet-stream")

    return Starlette(routes=[
        Route("/v1/worker/register", register, methods=["POST"]),
        Route("/v1/worker/lease", lease, methods=["POST"]),
        Route("/v1/worker/heartbeat", heartbeat, methods=["POST"]),
        Route("/v1/worker/output/{lease_id}/{name}", output, methods=["PUT"]),
        Route("/v1/worker/complete", complete, methods=["POST"]),
        Route("/v1/worker/scene/{frame_id}", scene, methods=["GET"]),
    ])


class FakeServer:
    """Serve a FakeFarm with uvicorn in a thread on 127.0.0.1; can stop and start again on the same port."""

    def __init__(self, farm: FakeFarm | None = None) -> None:
        self.farm = farm or FakeFarm()
        self.app = make_app(self.farm)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> "FakeServer":
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 60, "the fake farm server to start", interval=0.02)
        self._sock = sock
        return self

    def stop(self) -> None:
        if self.server and self.thread:
            self.server.should_exit = True
            self.thread.join(30)
            self._sock.close()
            self.server = self.thread = None
