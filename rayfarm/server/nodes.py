"""The render nodes' API (docs/worker-protocol.md): path -> (method, handler, body model). Handlers are thin.

Every call passes ``NodeGate`` first (token, body, rate limit: node_http.py); the SQL is in the store,
the choice of chunks in ``rayfarm.scheduler``, the files in node_files.py. The nodes' hot calls (lease,
complete, heartbeat) go through the store's writer (group commit on SQLite).
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

import rayfarm
from rayfarm.domain.nodes import protocol_refusal
from rayfarm.protocol import nodes as wire
from rayfarm.scheduler import dispatch, results
from rayfarm.server.farm import Farm
from rayfarm.server.node_files import NodeFiles
from rayfarm.server.node_http import NodeGate, Refused
from rayfarm.store import workers
from rayfarm.store.db import Conflict
from rayfarm.store.leases import Claimed


class NodeApi:
    """What the handlers share: the farm, the gate every call passes, the files nodes fetch and send."""

    def __init__(self, farm: Farm):
        self.farm = farm
        self.gate = NodeGate(farm)
        self.files = NodeFiles(farm)

    def intervals(self) -> wire.Intervals:
        idle, busy = self.farm.heartbeat_intervals()
        return {"heartbeatSeconds": idle, "busyHeartbeatSeconds": busy}

    def claim(self, conn, worker, count: int, done: Claimed | None = None) -> list[Claimed]:
        """Lease ``count`` chunks to ``worker``; ``done``: the result this transaction recorded just before."""
        return dispatch.claim(conn, worker, count, time.time(), self.farm.settings.lease_seconds,
                              holding=done is not None, known=done)

    def log_attempts(self, worker, claimed: list[Claimed]) -> None:
        if not claimed:
            return
        at = datetime.now().isoformat(timespec="seconds")
        for item in claimed:
            self.farm.logs.append(item.task.id, item.frame.id,
                                  [f"=== attempt {item.frame.attempts + 1} on node {worker.name} at {at} ==="])

    def observe_leases(self, claimed: list, started: float) -> None:
        if claimed:
            self.farm.metrics.dispatch.observe(time.perf_counter() - started)
            self.farm.metrics.leases.inc(len(claimed))


# ---------------------------------------------------------------- calls

async def register(api: NodeApi, request: Request, body: wire.Register) -> Response:
    refusal = protocol_refusal(body.protocol, body.version, wire.VERSION, wire.OLDEST, rayfarm.__version__)
    if refusal:
        raise Refused(426, refusal)  # Upgrade Required: nothing is written for a node that cannot work here

    def run(conn):
        return workers.register(conn, body.model_dump(), time.time())

    try:
        worker_id, session, released = await api.farm.writer.run(run)
    except Conflict:  # the same name registered at the same moment: now its row exists
        worker_id, session, released = await api.farm.writer.run(run)
    if released:
        api.farm.wakeup.notify()
    api.farm.live_nodes += 1  # until the sweep counts again
    answer: wire.Registered = {"workerId": worker_id, "session": session, "protocol": wire.VERSION,
                               "leaseSeconds": api.farm.settings.lease_seconds, **api.intervals()}
    return JSONResponse(answer)


async def lease(api: NodeApi, request: Request, body: wire.LeaseRequest) -> Response:
    """Chunks for the node now, or as soon as some wait (long poll up to ``wait`` seconds)."""
    def claim(conn):
        worker = workers.check_session(conn, body.workerId, body.session)
        return worker, api.claim(conn, worker, body.max)

    def after(found):
        api.log_attempts(*found)
        return found[1]

    deadline = time.monotonic() + body.wait
    while True:
        started = time.perf_counter()
        claimed = await api.farm.writer.run(claim, after)
        api.observe_leases(claimed, started)
        found = await api.files.lease_answers(claimed)
        remaining = deadline - time.monotonic()
        if found or remaining <= 0 or await request.is_disconnected():
            answer: wire.Leases = {"leases": found}
            return JSONResponse(answer)
        await api.farm.wakeup.wait(min(remaining, 2.0))


async def heartbeat(api: NodeApi, request: Request, body: wire.Heartbeat) -> Response:
    def beat(conn):
        worker = workers.check_session(conn, body.workerId, body.session)
        stop, logs = workers.heartbeat(conn, worker, [r.model_dump() for r in body.running], body.cpu,
                                       body.memUsed, time.time(), api.farm.settings.lease_seconds)
        return stop, logs, worker

    def after(beaten):
        stop, logs, worker = beaten
        for task_id, frame_id, lines in logs:
            api.farm.logs.append(task_id, frame_id, lines)
        return stop, worker

    stop, worker = await api.farm.writer.run(beat, after)
    answer: wire.Beat = {"stop": stop, "leaseExpires": time.time() + api.farm.settings.lease_seconds,
                         "disabled": bool(worker.disabled), "draining": bool(worker.draining), **api.intervals()}
    return JSONResponse(answer)


async def complete(api: NodeApi, request: Request, body: wire.Complete) -> Response:
    """Record a result; with ``next`` > 0 also lease the node its next chunks in the same transaction."""
    def record(conn):
        # the session first: only the node itself (its current session) may report on its leases
        worker = workers.check_session(conn, body.workerId, body.session)
        done = results.complete(conn, body.workerId, body.leaseId, body.result, error=body.error,
                                seconds=body.executeSeconds, avg_cpu=body.avgCpu, avg_memory=body.avgMemory,
                                now=time.time())
        claimed = api.claim(conn, worker, body.next, done) if body.next else []
        return done, worker, claimed

    def after(recorded):
        done, worker, claimed = recorded
        if done is not None:
            results.settle_after_commit(api.farm.db, done, claimed)
            lines = list(body.log)
            if body.result != "done" and body.error:
                lines.append(f"=== {body.result}: {body.error}")
            if lines:
                api.farm.logs.append(done.frame.task_id, done.frame.id, lines)
        if claimed:
            api.log_attempts(worker, claimed)
        return done, claimed

    started = time.perf_counter()
    done, claimed = await api.farm.writer.run(record, after)
    accepted = done is not None
    api.farm.metrics.results.labels(body.result, "yes" if accepted else "no").inc()
    if accepted:
        api.farm.wakeup.notify()
        api.farm.previews.notice(done.task.id)  # if this ended the task, its previews are made in the background
        if body.result == "done" and body.outputs:
            api.files.done_outputs(done.task, done.frame, body.outputs)  # a few stat calls and one small file
    answer: wire.Completed = {"accepted": accepted}
    if body.next:
        api.observe_leases(claimed, started)
        answer["leases"] = await api.files.lease_answers(claimed)
    return JSONResponse(answer)


async def output(api: NodeApi, request: Request, body: None) -> Response:
    return await api.files.output(request, body)


async def scene(api: NodeApi, request: Request, body: None) -> Response:
    return await api.files.scene(request, body)


async def input_file(api: NodeApi, request: Request, body: None) -> Response:
    return await api.files.input(request, body)


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class NodeRoute:
    method: str
    handler: Callable[[NodeApi, Request, wire.Body | None], Awaitable[Response]]
    model: type[wire.Body] | None = None  # the JSON body; None: raw bytes or none (the node names itself in headers)


NODE_ROUTES: dict[str, NodeRoute] = {
    f"{wire.API}/register": NodeRoute("POST", register, wire.Register),
    f"{wire.API}/lease": NodeRoute("POST", lease, wire.LeaseRequest),
    f"{wire.API}/heartbeat": NodeRoute("POST", heartbeat, wire.Heartbeat),
    f"{wire.API}/complete": NodeRoute("POST", complete, wire.Complete),
    f"{wire.API}/output/{{lease_id}}/{{file_name}}": NodeRoute("PUT", output),
    f"{wire.API}/scene/{{frame_id:int}}": NodeRoute("GET", scene),
    f"{wire.API}/input/{{frame_id:int}}/{{index:int}}": NodeRoute("GET", input_file),
}


def http_routes(farm: Farm) -> list[HttpRoute]:
    api = NodeApi(farm)

    def bound(route: NodeRoute):
        async def handle(request: Request, body) -> Response:
            return await route.handler(api, request, body)
        return api.gate.endpoint(handle, route.model)

    return [HttpRoute(path, bound(route), methods=[route.method]) for path, route in NODE_ROUTES.items()]
