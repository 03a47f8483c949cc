"""The signed API's one endpoint: every ``/api/...`` path is looked up in the route table (server/table.py),
authenticated (server/auth.py), validated (server/models.py) and run; plus liveness and Prometheus metrics.

Every answer is the Renderbus envelope with HTTP 200 (errors too: code and sentence in the envelope).
"""

import logging
import time
import uuid

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from rayfarm.protocol.codes import ApiError, Code
from rayfarm.protocol.envelope import envelope, json_object, success
from rayfarm.server import audit, ratelimit
from rayfarm.server.auth import authenticate
from rayfarm.server.farm import Farm
from rayfarm.server.http import BodyTooLarge, read_body
from rayfarm.server.table import TABLE

log = logging.getLogger("rayfarm.server")
CATCH_ALL = "/api/{rest:path}"  # every signed route; mounted after the others


def answer(payload: dict) -> JSONResponse:
    return JSONResponse(payload, status_code=200)


def http_routes(farm: Farm) -> list[HttpRoute]:
    """``/api/{path}`` (the signed API), ``/healthz`` and ``/metrics``."""
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
            call = audit.Call(farm, path, channel="sdk", address=ratelimit.client_ip(request), host=host,
                              request_id=request_id, changes_state=not route.reads,
                              platform=request.headers.get("platform"))  # signed: hardwareConfig/list answers for it
            data = await run_in_threadpool(handle, route, request.headers, body, call)
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

    def handle(route, headers, body: dict, call: audit.Call):
        """Authenticate, validate and run a call (and record it, server/audit.py): one thread-pool hop per request."""
        user = authenticate(farm, headers, call.host, call.path, body, changes_state=not route.reads)
        return audit.run(farm, route, call, user, body)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "time": time.time()})

    async def metrics_page(request: Request) -> Response:
        body, content_type = await run_in_threadpool(metrics.render)
        return Response(body, media_type=content_type)

    return [HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/metrics", metrics_page, methods=["GET"]),
            HttpRoute(CATCH_ALL, renderbus, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])]
