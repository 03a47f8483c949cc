"""HTTP routes of the dashboard: the page, its static files, sign-in, the API behind a session cookie, thumbnails
(and, in web/outputs.py, a task's output files, their zip and previews).

``POST /web/api/<path>`` runs the signed API's route ``/api/<path>`` (the one route table: same body
models, same handlers, same envelope); only the authentication differs: the session cookie instead of a
signature. Every POST must carry the ``X-Rayfarm-Web`` header and, when the browser sends one, an
``Origin`` of this very server: with the SameSite=Strict cookie that keeps other sites from acting for
a signed-in user (CSRF).

Rate limits (rayfarm/server/ratelimit.py): every call after sign-in spends a token of the signed-in
access id's bucket, the very bucket its signed calls use; a call without a valid session spends one of
the address's. Failed sign-ins spend tokens of a much smaller bucket per address, and while that one is
empty every sign-in is refused, a right key too (else the answer would tell which guess was right).
Refused calls answer HTTP 429 with ``Retry-After`` and the usual envelope (code 429 and a sentence).
"""

import logging
import time
import uuid
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from rayfarm.config import farm_secret
from rayfarm.domain import states
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.protocol.envelope import envelope, json_object, success
from rayfarm.server import audit, models, ratelimit
from rayfarm.server.farm import Farm
from rayfarm.server.http import BodyTooLarge, read_body
from rayfarm.server.table import TABLE
from rayfarm.store import queries
from rayfarm.store.counts import task_counts
from rayfarm.web import outputs
from rayfarm.web.session import (
    COOKIE,
    Sessions,
    current_user,
    end_session,
    record_refused_sign_in,
    sign_in,
    start_session,
)

log = logging.getLogger("rayfarm.web")
STATIC = Path(__file__).with_name("static")
CSRF_HEADER = "x-rayfarm-web"
MAX_ID = 2**31 - 1
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
# what each task button does, by the state table's name of the operation
BUTTON_OPS = {"stop": states.Op.STOP, "start": states.Op.START, "abort": states.Op.ABORT, "delete": states.Op.DELETE,
              "fullSpeed": states.Op.FULL_SPEED, "recommit": states.Op.RECOMMIT, "settings": states.Op.SETTINGS}


class SignIn(models.Body):
    accessId: Annotated[str, Field(min_length=1, max_length=128)]
    accessKey: Annotated[str, Field(min_length=1, max_length=256)]


def reply(data=None, request_id: str | None = None, error: ApiError | None = None) -> JSONResponse:
    payload = envelope(error.code, error.message, None, request_id) if error else success(data, request_id)
    if isinstance(error, ratelimit.Throttled):
        return JSONResponse(payload, status_code=429,
                            headers={"Cache-Control": "no-store", "Retry-After": ratelimit.retry_after(error.wait)})
    return JSONResponse(payload, headers={"Cache-Control": "no-store"})


def check_csrf(request: Request) -> None:
    """A state-changing call must come from this dashboard's own scripts."""
    if request.headers.get(CSRF_HEADER) != "1":
        raise ApiError(Code.FORBIDDEN, "This call must come from the rayfarm dashboard (the X-Rayfarm-Web header is "
                                       "missing); reload the page and try again.")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise ApiError(Code.FORBIDDEN, "This call comes from another web site; open the dashboard at this server's "
                                       "own address and try again.")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise ApiError(Code.FORBIDDEN, "This call comes from another web site; open the dashboard at this server's "
                                       "own address and try again.")


def routes(farm: Farm) -> list[BaseRoute]:
    sessions = Sessions(farm_secret(farm.settings.data_dir))
    signins = ratelimit.signin_limiter(farm.settings)  # failed sign-ins, per address
    # task status codes in which each button does something (unsubmitted tasks are never listed here)
    button_rules = {name: sorted(int(s) for s in states.RULES[op][0] if s != states.TaskStatus.CREATED)
                    for name, op in BUTTON_OPS.items()}

    def user_of(request: Request):
        return current_user(farm, sessions, request.cookies.get(COOKIE))

    def limit(request: Request) -> None:
        """Throttled when the session's access id (or the address, without a valid session) is out of tokens."""
        ratelimit.check_web(farm, request, sessions.access_id(request.cookies.get(COOKIE)))

    async def body_of(request: Request) -> dict:
        try:
            raw = await read_body(request, farm.settings.max_body)
        except BodyTooLarge:
            raise ApiError(Code.INVALID_PARAMETER, "The request body is too large; send less.") from None
        return json_object(raw)

    async def guarded(request: Request, work) -> Response:
        """Await ``work(request_id)``; an ApiError becomes its envelope, anything else a logged 500 envelope."""
        request_id = uuid.uuid4().hex
        try:
            return await work(request_id)
        except ApiError as exc:
            return reply(request_id=request_id, error=exc)
        except Exception:
            log.exception("dashboard request %s to %s failed", request_id, request.url.path)
            return reply(request_id=request_id, error=ApiError(
                Code.INTERNAL, f"The farm hit an internal error (request {request_id}); it was logged. Try again, and "
                               f"tell the farm's administrator if it lasts."))

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    async def api(request: Request) -> Response:
        async def work(request_id: str) -> Response:
            path = "/api/" + request.path_params["rest"]
            route = TABLE.get(path)
            if route is None:
                raise ApiError(Code.NOT_FOUND, f"There is no API at {path}; check the URL.")
            check_csrf(request)
            limit(request)  # before any work, like the signed API
            user = await run_in_threadpool(user_of, request)
            body = await body_of(request)
            call = audit.Call(farm, path, channel="dashboard", address=ratelimit.client_ip(request),
                              host=request.headers.get("host", ""), request_id=request_id, changes_state=not route.reads)
            data = await run_in_threadpool(audit.run, farm, route, call, user, body)
            if route.wakes:
                farm.wakeup.notify()
            return data if isinstance(data, Response) else reply(data, request_id)

        return await guarded(request, work)

    async def signin(request: Request) -> Response:
        async def work(request_id: str) -> Response:
            check_csrf(request)
            address = f"ip:{ratelimit.client_ip(request)}"
            if wait := signins.blocked(address):  # refused before any work, whatever the key
                raise ratelimit.signin_refused(wait, "from this address")
            body = models.parse(SignIn, await body_of(request))
            # failed sign-ins count per (real) address and per access id tried: one client cannot guess on and on,
            # and many addresses (or one proxy's many users) cannot guess one user's key together either
            buckets = [(address, "from this address"), (f"id:{body.accessId}", "for this access id")]
            # every attempt takes its tokens first (so parallel guesses cannot all slip past an empty bucket);
            # one that is not a wrong id or key gets them back
            taken = []
            try:
                for bucket, who in buckets:
                    if wait := signins.take(bucket):
                        raise ratelimit.signin_refused(wait, who)
                    taken.append(bucket)
            except ratelimit.Throttled:
                for bucket in taken:
                    signins.give_back(bucket)
                raise
            wrong = False
            client = ratelimit.client_ip(request)
            try:
                user, key = await run_in_threadpool(sign_in, farm, body.accessId, body.accessKey)
            except ApiError as exc:
                wrong = exc.code == Code.LOGIN_REQUIRED
                await run_in_threadpool(record_refused_sign_in, farm, body.accessId, client, exc)
                raise
            finally:
                if not wrong:
                    for bucket in taken:
                        signins.give_back(bucket)
            cookie = await run_in_threadpool(start_session, farm, sessions, user, key, client)
            response = reply({"userId": user.id, "userName": user.name, "isAdmin": user.is_admin}, request_id)
            response.set_cookie(COOKIE, cookie, max_age=sessions.lifetime, path="/", httponly=True,
                                samesite="strict", secure=request.url.scheme == "https")
            return response

        return await guarded(request, work)

    def signout(everywhere: bool):
        async def endpoint(request: Request) -> Response:
            async def work(request_id: str) -> Response:
                check_csrf(request)
                limit(request)
                await run_in_threadpool(end_session, farm, sessions, request.cookies.get(COOKIE), everywhere)
                response = reply(None, request_id)
                response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                                       secure=request.url.scheme == "https")
                return response

            return await guarded(request, work)

        return endpoint

    async def me(request: Request) -> Response:
        async def work(request_id: str) -> Response:
            limit(request)
            user = await run_in_threadpool(user_of, request)
            return reply({"userId": user.id, "userName": user.name, "isAdmin": user.is_admin,
                          "allowCommands": user.allow_commands, "rules": button_rules, "serverTime": time.time()},
                         request_id)

        return await guarded(request, work)

    async def counts(request: Request) -> Response:
        def read():
            user = user_of(request)
            with farm.db.read() as conn:
                return task_counts(conn, user)

        async def work(request_id: str) -> Response:
            limit(request)
            return reply(await run_in_threadpool(read), request_id)

        return await guarded(request, work)

    def thumbnail_path(request: Request) -> Path | None:
        """The thumbnail file, if the caller owns its task and frame; None for anything else (one answer for all)."""
        user = user_of(request)
        task_id, frame_id, name = (request.path_params[k] for k in ("task_id", "frame_id", "name"))
        if not (0 < task_id <= MAX_ID and 0 < frame_id <= MAX_ID) or name.startswith(".") or not name.endswith(".jpg"):
            return None
        with farm.db.read() as conn:
            if queries.owned_frame(conn, user, frame_id, task_id) is None:
                return None
        return farm.thumbnails.file(user.id, f"{task_id}/{frame_id}/{name}")  # made now if it is not yet

    async def thumbnail(request: Request) -> Response:
        try:
            limit(request)
            path = await run_in_threadpool(thumbnail_path, request)
        except ratelimit.Throttled as exc:
            return JSONResponse({"error": exc.message}, status_code=429,
                                headers={"Retry-After": ratelimit.retry_after(exc.wait)})
        except ApiError as exc:
            return JSONResponse({"error": exc.message}, status_code=401 if exc.code == Code.LOGIN_REQUIRED else 403)
        if path is None:
            return JSONResponse({"error": "There is no such thumbnail."}, status_code=404)
        return FileResponse(path, media_type="image/jpeg",
                            headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"})

    return [
        Route("/", page, methods=["GET"]),
        Mount("/web/static", StaticFiles(directory=STATIC), name="web-static"),
        Route("/web/signin", signin, methods=["POST"]),
        Route("/web/signout", signout(everywhere=False), methods=["POST"]),
        Route("/web/signout-everywhere", signout(everywhere=True), methods=["POST"]),
        Route("/web/me", me, methods=["GET"]),
        Route("/web/counts", counts, methods=["GET"]),
        Route("/web/thumbnails/{task_id:int}/{frame_id:int}/{name}", thumbnail, methods=["GET"]),
        *outputs.routes(farm, user_of, limit),  # a task's output files, its zip and previews
        Route("/web/api/{rest:path}", api, methods=["POST"]),
    ]
