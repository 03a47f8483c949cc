"""The native worker API (docs/worker-protocol.md): register, lease, heartbeat, outputs, complete."""

import asyncio
import hashlib
import hmac
import logging
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from rayfarm.domain.paths import output_name
from rayfarm.server import ratelimit
from rayfarm.server.farm import Farm
from rayfarm.store import leases, workers
from rayfarm.store.schema import tasks
from rayfarm.store.workers import WorkerError
from rayfarm.worker_files import make_thumbnail, safe_file_name, sha256_of

log = logging.getLogger("rayfarm.native")
MAX_LOG_LINES = 2000
MAX_OUTPUT_BYTES = 8 * 1024**3
MAX_BODY_BYTES = 16 * 1024 * 1024


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("text must not contain NUL characters")
    return text


def Text(max_length: int, **more) -> type[str]:  # noqa: N802 - a type
    """A string the database can store: bounded, without NUL characters."""
    return Annotated[str, AfterValidator(_no_nul), Field(max_length=max_length, **more)]


MAX_ID = 2**31 - 1  # ids are 32-bit integer columns
WorkerId = Annotated[int, Field(ge=1, le=MAX_ID)]
Bytes = Annotated[int, Field(ge=0, le=2**62)]  # a memory size (64-bit integer column)
Sample = Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)]  # cpu %, memory, seconds


class Register(Body):
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@-]+$")]
    hostname: Text(255) = ""
    slots: Annotated[int, Field(ge=1, le=256)] = 1
    cores: Annotated[int, Field(ge=1, le=4096)] = 1
    memory: Bytes = 0
    gpu: Text(255) = ""
    software: Annotated[dict[Text(64), Text(64)], Field(max_length=64)] = {}
    tags: Annotated[list[Text(64)], Field(max_length=64)] = []
    version: Text(32) = ""


class Session(Body):
    workerId: WorkerId
    session: Text(64)


class LeaseRequest(Session):
    max: Annotated[int, Field(ge=1, le=256)] = 1
    wait: Annotated[float, Field(ge=0, le=20)] = 0


class Running(Body):
    leaseId: Text(64)
    progress: Annotated[float, Field(ge=0, le=100)] = 0
    cpu: Sample | None = None
    memory: Sample | None = None
    log: Annotated[list[Annotated[str, Field(max_length=8192)]], Field(max_length=MAX_LOG_LINES)] = []


class Heartbeat(Session):
    cpu: Sample | None = None
    memUsed: Bytes | None = None
    running: Annotated[list[Running], Field(max_length=256)] = []


class Complete(Session):
    leaseId: Text(64)
    result: Annotated[str, Field(pattern="^(done|failed|timeout)$")]
    error: Text(20000) | None = None
    executeSeconds: Sample | None = None
    avgCpu: Sample | None = None
    avgMemory: Sample | None = None
    outputs: Annotated[list[Annotated[str, Field(max_length=255)]], Field(max_length=10000)] = []
    log: Annotated[list[Annotated[str, Field(max_length=8192)]], Field(max_length=MAX_LOG_LINES)] = []
    next: Annotated[int, Field(ge=0, le=256)] = 0  # lease up to this many next chunks in the same call


def _storage_error(exc: OSError) -> WorkerError:
    """507: the output storage is full or unwritable. The node fails the chunk (an attempt), which is retried."""
    reason = exc.strerror or type(exc).__name__
    return WorkerError(507, f"The farm could not store the output ({reason}); the chunk will be retried. "
                            f"Tell the administrator to check the output storage.")


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class RateLimited(Exception):
    def __init__(self, wait: float, message: str):
        super().__init__(message)
        self.wait, self.message = wait, message


class Native:
    def __init__(self, farm: Farm):
        self.farm = farm
        self._token: str | None = None

    # ------------------------------------------------------------ plumbing

    def token(self) -> str:
        if self._token is None:
            with self.farm.db.write() as conn:
                self._token = workers.worker_token(conn, self.farm.keys)
        return self._token

    async def _authorized(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        expected = self._token or await run_in_threadpool(self.token)
        if not given or not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
            wait = ratelimit.refused_attempts_wait(self.farm, request)
            if wait:
                raise RateLimited(wait, ratelimit.too_many_message(self.farm.limiter, "this address with a wrong "
                                                                   "worker token", wait))
            ratelimit.count_refused_attempt(self.farm, request)
            raise WorkerError(401, "The worker token is missing or wrong; start the worker with --token "
                                   "(printed by `rayfarm worker-token` on the server).")

    async def _body(self, request: Request, model: type[Body]) -> Body:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise WorkerError(413, "The request body is larger than 16 MiB; send less.")
        chunks, size = [], 0
        async for chunk in request.stream():  # the limit holds while reading, whatever Content-Length said
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise WorkerError(413, "The request body is larger than 16 MiB; send less.")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            return model.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise WorkerError(422, f"Invalid field {where!r}: {first['msg']}.") from None

    def route(self, handler, model: type[Body] | None = None):
        async def endpoint(request: Request) -> Response:
            try:
                await self._authorized(request)
                body = await self._body(request, model) if model else None
                wait = self.farm.limiter.take(ratelimit.node_key(request, body))
                if wait:
                    raise RateLimited(wait, ratelimit.too_many_message(self.farm.limiter, "this node", wait))
                return await handler(request, body)
            except WorkerError as exc:
                return _error(exc.status, exc.message)
            except RateLimited as exc:
                return _error(429, exc.message, {"Retry-After": ratelimit.retry_after(exc.wait)})
            except Exception:
                log.exception("worker call %s failed", request.url.path)
                return _error(500, "The server hit an internal error; it was logged. Retry later.")
        return endpoint

    def _session(self, conn, worker_id: int, session: str):
        return workers.check_session(conn, worker_id, session)

    def append_log(self, task_id: int, frame_id: int, lines: list[str]) -> None:
        self.farm.logs.append(task_id, frame_id, lines)

    # ------------------------------------------------------------ calls

    async def register(self, request: Request, body: Register) -> Response:
        def run(conn):
            return workers.register(conn, body.model_dump(), time.time())

        try:
            worker_id, session, released = await self.farm.writer.run(run)
        except IntegrityError:  # the same name registered at the same moment: now its row exists
            worker_id, session, released = await self.farm.writer.run(run)
        if released:
            self.farm.wakeup.notify()
        self.farm.live_nodes += 1  # until the sweep counts again
        return JSONResponse({"workerId": worker_id, "session": session, "leaseSeconds": self.farm.settings.lease_seconds,
                             **self._intervals()})

    def _intervals(self) -> dict:
        idle, busy = self.farm.heartbeat_intervals()
        return {"heartbeatSeconds": idle, "busyHeartbeatSeconds": busy}

    def _claim_in(self, conn, worker, count: int, holding: bool = False) -> list[leases.Claimed]:
        """Lease up to ``count`` chunks to the node in the caller's transaction (none while disabled or draining)."""
        if worker.disabled or worker.draining:
            return []
        s = self.farm.settings
        return leases.claim(conn, worker, list((worker.software or {}).keys()), count, time.time(),
                                    s.lease_seconds, not self.farm.db.is_sqlite, holding)

    def _log_attempts(self, worker, claimed: list[leases.Claimed]) -> None:
        for item in claimed:
            self.append_log(item.task.id, item.frame.id, [f"=== attempt {item.frame.attempts + 1} on node {worker.name} "
                                                          f"at {datetime.now().isoformat(timespec='seconds')} ==="])

    async def _claim(self, body: LeaseRequest) -> list[dict]:
        def after(found):
            self._log_attempts(*found)
            return found[1]

        def claim(conn):
            worker = self._session(conn, body.workerId, body.session)
            return worker, self._claim_in(conn, worker, body.max)

        claimed = await self.farm.writer.run(claim, after)
        return await self._lease_answers(claimed)

    async def _lease_answers(self, claimed: list[leases.Claimed]) -> list[dict]:
        """The leases' JSON; off the event loop when it reads files (a scene's or inputs' size and sha256)."""
        if any(self._reads_files(item.task) for item in claimed):
            return await run_in_threadpool(lambda: [self._lease_json(i.frame, i.task) for i in claimed])
        return [self._lease_json(item.frame, item.task) for item in claimed]

    def _reads_files(self, task) -> bool:
        return self._scene_file(task) is not None or bool((task.render or {}).get("inputs"))

    def _lease_json(self, frame, task) -> dict:
        render = dict(task.render or {})
        location = self._scene_file(task)
        # a task without a scene (a command that names none) has nothing to download
        url = f"/v1/worker/scene/{frame.id}" if location is not None else None
        scene = {"url": url, "path": None, "sha256": None, "size": None}
        if location is not None and location.is_file():
            scene.update(sha256=sha256_of(location), size=location.stat().st_size)
            if render.get("scene_root") == "shared":
                # the root too: a confined render may read the whole shared root (the scene's references)
                scene["path"], scene["root"] = str(location), self.farm.storage.shared_root_of(location)
        inputs = []
        for index, path in enumerate(render.get("inputs") or []):
            stored = self.farm.storage.input_path(task.user_id, path)
            if stored.is_file():
                inputs.append({"path": path, "url": f"/v1/worker/input/{frame.id}/{index}",
                               "sha256": sha256_of(stored), "size": stored.stat().st_size})
        return {"leaseId": frame.lease_id, "frameId": frame.id, "taskId": task.id, "userId": task.user_id,
                "frameIndex": frame.frame_index, "start": frame.start_frame, "end": frame.end_frame,
                "step": frame.step, "attempt": frame.attempts + 1, "jobStopTime": task.job_stop_time,
                "stallTimeout": render.get("stall_timeout") or 0,
                "leaseExpires": frame.lease_expires, "render": render, "scene": scene, "inputs": inputs,
                "outputName": output_name(task.id, task.scene_name or "scene")}

    def _scene_file(self, task) -> Path | None:
        render = task.render or {}
        if render.get("scene_root") == "input":
            return self.farm.storage.input_path(task.user_id, render["scene"])
        if render.get("scene_root") == "shared":
            return Path(render["scene"])
        return None

    async def lease(self, request: Request, body: LeaseRequest) -> Response:
        deadline = time.monotonic() + body.wait
        metrics = self.farm.metrics
        while True:
            started = time.perf_counter()
            found = await self._claim(body)
            if found:
                metrics.dispatch.observe(time.perf_counter() - started)
                metrics.leases.inc(len(found))
            remaining = deadline - time.monotonic()
            if found or remaining <= 0 or await request.is_disconnected():
                return JSONResponse({"leases": found})
            await self.farm.wakeup.wait(min(remaining, 2.0))

    async def heartbeat(self, request: Request, body: Heartbeat) -> Response:
        def beat(conn):
            s = self.farm.settings
            worker = self._session(conn, body.workerId, body.session)
            stop, logs = workers.heartbeat(conn, worker, [r.model_dump() for r in body.running], body.cpu,
                                           body.memUsed, time.time(), s.lease_seconds)
            return stop, logs, worker

        def after(beaten):
            stop, logs, worker = beaten
            for task_id, frame_id, lines in logs:
                self.append_log(task_id, frame_id, lines)
            return stop, worker

        stop, worker = await self.farm.writer.run(beat, after)
        return JSONResponse({"stop": stop, "leaseExpires": time.time() + self.farm.settings.lease_seconds,
                             "disabled": bool(worker.disabled), "draining": bool(worker.draining),
                             **self._intervals()})

    def _lease_target(self, worker_id: int, session: str, lease_id: str, name: str) -> Path | None:
        with self.farm.db.read() as conn:
            self._session(conn, worker_id, session)
            frame = leases.lease_frame(conn, worker_id, lease_id)
            if frame is None:
                return None
            task = conn.execute(tasks.select().where(tasks.c.id == frame.task_id)).first()
        try:
            folder = self.farm.storage.output_dir(task.user_id, output_name(task.id, task.scene_name or "scene"))
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _storage_error(exc) from None
        return folder / name

    async def output(self, request: Request, body: None) -> Response:
        lease_id = request.path_params["lease_id"]
        name = safe_file_name(request.path_params["file_name"])
        if name is None:
            raise WorkerError(422, "The output file name must be a plain file name (no '/', no '..').")
        worker_id, session = self._identity(request)
        if len(lease_id) > 64 or "\x00" in lease_id:  # not a lease id this farm hands out
            return JSONResponse({"accepted": False})
        target = await run_in_threadpool(self._lease_target, worker_id, session, lease_id, name)
        if target is None:
            return JSONResponse({"accepted": False})
        digest, size, temp = hashlib.sha256(), 0, None
        try:
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as handle:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_OUTPUT_BYTES:
                        raise WorkerError(413, "The output file is larger than the farm accepts (8 GiB).")
                    digest.update(chunk)
                    await asyncio.to_thread(handle.write, chunk)
            os.replace(temp, target)
        except OSError as exc:
            raise _storage_error(exc) from None
        finally:
            if temp and os.path.exists(temp):
                os.unlink(temp)
        return JSONResponse({"accepted": True, "size": size, "sha256": digest.hexdigest()})

    def _identity(self, request: Request) -> tuple[int, str]:
        try:
            worker_id = int(request.headers.get("x-worker-id", ""))
        except ValueError:
            raise WorkerError(422, "The X-Worker-Id header is missing; send the id from register.") from None
        if not 1 <= worker_id <= MAX_ID:
            raise WorkerError(422, "The X-Worker-Id header is not a worker id; send the id from register.")
        return worker_id, request.headers.get("x-worker-session", "")

    async def complete(self, request: Request, body: Complete) -> Response:
        """Record a result; with ``next`` > 0 also lease the node its next chunks in the same transaction."""
        def record(conn):
            done = leases.complete(conn, body.workerId, body.leaseId, body.result, error=body.error,
                                   seconds=body.executeSeconds, avg_cpu=body.avgCpu, avg_memory=body.avgMemory,
                                   now=time.time(), settle_after=not self.farm.db.is_sqlite)
            worker = None
            if done is None or body.next:  # a lease is bound to its node's session: say why, if it is the session
                worker = self._session(conn, body.workerId, body.session)
            claimed = self._claim_in(conn, worker, body.next, holding=done is not None) if body.next else []
            return done, worker, claimed

        def after(recorded):
            done, worker, claimed = recorded
            if done is not None and done.settle_after:
                with self.farm.db.autocommit() as conn:  # one round trip while other chunks go on
                    going = leases.still_going(conn, done.task.id)
                if not going:
                    with self.farm.db.write() as conn:
                        leases.settle_if_finished(conn, done.task.id)
            if done is not None:
                lines = list(body.log)
                if body.result != "done" and body.error:
                    lines.append(f"=== {body.result}: {body.error}")
                if lines:
                    self.append_log(done.frame.task_id, done.frame.id, lines)
            if claimed:
                self._log_attempts(worker, claimed)
            return done, claimed

        started = time.perf_counter()
        done, claimed = await self.farm.writer.run(record, after)
        accepted = done is not None
        metrics = self.farm.metrics
        metrics.results.labels(body.result, "yes" if accepted else "no").inc()
        if accepted:
            self.farm.wakeup.notify()
            if body.result == "done" and body.outputs:
                await run_in_threadpool(self._thumbnails_logged, done.task, done.frame, body.outputs)
        answer: dict = {"accepted": accepted}
        if body.next:
            if claimed:
                metrics.dispatch.observe(time.perf_counter() - started)
                metrics.leases.inc(len(claimed))
            answer["leases"] = await self._lease_answers(claimed)
        return JSONResponse(answer)

    def _thumbnails_logged(self, task, frame, names: list[str]) -> None:
        try:
            self._thumbnails(task, frame, names)
        except OSError as exc:  # the result is committed; a missing thumbnail must not turn it into an error
            log.warning("no thumbnails for task %s frame %s: %s", task.id, frame.id, exc)

    def _thumbnails(self, task, frame, names: list[str]) -> None:
        if not names:
            return
        folder = self.farm.storage.output_dir(task.user_id, output_name(task.id, task.scene_name or "scene"))
        target = self.farm.storage.user_dir(task.user_id, "thumbnails") / str(task.id) / str(frame.id)
        for name in names:
            clean = safe_file_name(name)
            if clean and (folder / clean).is_file():
                make_thumbnail(folder / clean, target / f"{clean}.jpg")

    def _leased_task(self, request: Request):
        """The task of the frame in the URL, if this worker holds a valid lease on that frame."""
        frame_id = int(request.path_params["frame_id"])
        worker_id, session = self._identity(request)
        if frame_id > MAX_ID:
            return None
        with self.farm.db.read() as conn:
            self._session(conn, worker_id, session)
            frame = conn.execute(leases.frames.select().where(leases.frames.c.id == frame_id)).first()
            if frame is None or frame.node_id != worker_id or frame.status != 2:
                return None
            return conn.execute(tasks.select().where(tasks.c.id == frame.task_id)).first()

    async def _send(self, path: Path | None, what: str) -> Response:
        if path is None or not path.is_file():
            raise WorkerError(404, f"No {what} for that frame under a lease of this worker.")
        return FileResponse(path, headers={"X-Sha256": await run_in_threadpool(sha256_of, path)})

    async def scene(self, request: Request, body: None) -> Response:
        task = await run_in_threadpool(self._leased_task, request)
        return await self._send(self._scene_file(task) if task else None, "scene")

    async def input(self, request: Request, body: None) -> Response:
        task = await run_in_threadpool(self._leased_task, request)
        listed = ((task.render or {}).get("inputs") or []) if task else []
        index = int(request.path_params["index"])
        path = self.farm.storage.input_path(task.user_id, listed[index]) if index < len(listed) else None
        return await self._send(path, "input file")

    def routes(self) -> list[Route]:
        return [
            Route("/v1/worker/register", self.route(self.register, Register), methods=["POST"]),
            Route("/v1/worker/lease", self.route(self.lease, LeaseRequest), methods=["POST"]),
            Route("/v1/worker/heartbeat", self.route(self.heartbeat, Heartbeat), methods=["POST"]),
            Route("/v1/worker/complete", self.route(self.complete, Complete), methods=["POST"]),
            Route("/v1/worker/output/{lease_id}/{file_name}", self.route(self.output), methods=["PUT"]),
            Route("/v1/worker/scene/{frame_id:int}", self.route(self.scene), methods=["GET"]),
            Route("/v1/worker/input/{frame_id:int}/{index:int}", self.route(self.input), methods=["GET"]),
        ]
