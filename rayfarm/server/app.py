"""The Starlette application: one dispatcher for every Renderbus route, plus health."""

import asyncio
import contextlib
import logging
import time
import uuid

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from rayfarm import web
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.protocol.envelope import envelope, json_object, success
from rayfarm.server import files, models, ratelimit
from rayfarm.server.auth import authenticate
from rayfarm.server.farm import Farm
from rayfarm.server.http import BodyTooLarge, read_body
from rayfarm.server.native import Native
from rayfarm.server.replay import FLUSH_SECONDS
from rayfarm.server.table import TABLE
from rayfarm.store import leases, outage, web_sessions, workers
from rayfarm.store import tasks as task_store

log = logging.getLogger("rayfarm.server")
HOUSEKEEPING_SECONDS = 30.0


def answer(payload: dict) -> JSONResponse:
    return JSONResponse(payload, status_code=200)


def make_app(farm: Farm) -> Starlette:
    table = TABLE
    metrics = farm.metrics

    async def renderbus(request: Request) -> Response:
        started = time.perf_counter()
        path = request.url.path
        response, code = await dispatch(request, path)
        route = path if path in table else "unknown"
        metrics.requests.labels(route, str(code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    async def dispatch(request: Request, path: str) -> tuple[Response, int]:
        request_id = uuid.uuid4().hex
        try:
            route = table.get(path)
            if route is None:
                raise ApiError(Code.NOT_FOUND, f"There is no API at {path}; check the URL (rayfarm speaks the "
                                               f"Renderbus task API).")
            if request.method != "POST":
                raise ApiError(Code.ILLEGAL_REQUEST, f"{path} takes POST requests with a JSON body.")
            ratelimit.check_signed(farm, request)  # before any work: 429 when this caller is over its rate
            try:
                raw = await read_body(request, farm.settings.max_body)
            except BodyTooLarge:
                raise ApiError(Code.INVALID_PARAMETER, f"The request body is larger than "
                                                       f"{farm.settings.max_body // (1024 * 1024)} MiB; send less.") from None
            body = json_object(raw)
            host = request.headers.get("host", "")
            data = await run_in_threadpool(handle, route, request.headers, host, path, body, request_id)
            if route.wakes:
                farm.wakeup.notify()
            if isinstance(data, Response):
                return data, 200
            return answer(success(data, request_id)), 200
        except ApiError as exc:
            return answer(envelope(exc.code, exc.message, None, request_id)), exc.code
        except Exception:
            log.exception("request %s to %s failed", request_id, path)
            return answer(envelope(Code.INTERNAL, f"The farm hit an internal error (request {request_id}); it was "
                                                  f"logged. Try again, and tell the farm's administrator if it lasts.",
                                   None, request_id)), 500

    def handle(route, headers, host: str, path: str, body: dict, request_id: str):
        """Authenticate, validate and run a call: one thread-pool hop per request."""
        user = authenticate(farm, headers, host, path, body, changes_state=not route.reads)
        params = models.parse(route.model, body)
        return route.handler(farm, user, params, {"request_id": request_id})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "time": time.time()})

    async def metrics_page(request: Request) -> Response:
        body, content_type = await run_in_threadpool(metrics.render)
        return Response(body, media_type=content_type)

    def forget_old() -> None:
        """Requests too old to be replayed, dashboard sessions past their expiry."""
        now = time.time()
        farm.replay.forget_older_than(now - 2 * farm.settings.time_window - 60)
        with farm.db.write() as conn:
            web_sessions.forget_expired(conn, now)

    def sweep() -> None:
        """Requeue chunks of lost nodes and expired leases; enforce per-chunk and over-time limits."""
        now = time.time()
        with farm.db.write() as conn:
            farm.live_nodes = workers.count_live(conn)
            if not leases.sweep_turn(conn):
                return  # another server process is sweeping right now
            outage.forgive_outage(conn, now, farm.settings.lease_seconds)  # the farm was down: not the nodes' fault
            touched = set(workers.mark_lost(conn, now, farm.settings.lease_seconds))
            touched.update(leases.requeue_expired(conn, now))
            for task_id in touched:
                task_store.settle(conn, task_id)
            touched.update(leases.enforce_time_limits(conn, now))
        if touched:
            farm.wakeup.notify()

    async def every(seconds: float, job) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await run_in_threadpool(job)
            except Exception:
                log.exception("%s failed; will try again", job.__name__)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        farm.wakeup.bind(asyncio.get_running_loop())
        farm.writer.start()
        farm.logs.start()
        jobs = [asyncio.create_task(every(HOUSEKEEPING_SECONDS, forget_old)),
                asyncio.create_task(every(FLUSH_SECONDS, farm.replay.flush)),
                asyncio.create_task(every(farm.settings.sweep_seconds, sweep))]
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
            await run_in_threadpool(farm.writer.stop)
            await run_in_threadpool(farm.logs.stop)
            with contextlib.suppress(Exception):
                await run_in_threadpool(farm.replay.flush)
            farm.db.dispose()

    routes = [
        *Native(farm).routes(),
        *files.http_routes(farm),
        HttpRoute("/healthz", healthz, methods=["GET"]),
        HttpRoute("/metrics", metrics_page, methods=["GET"]),
        *web.routes(farm),  # the dashboard: /, /web/*
        HttpRoute("/api/{rest:path}", renderbus, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
