"""What every render node call goes through before its handler: the worker token, the body, the rate limit.

Refusals are HTTP statuses with ``{"error": "<English sentence>"}`` (docs/worker-protocol.md): 401 a
missing or wrong token, 404 an unknown node, 409 a session that is not the node's current one, 413 a
body over 16 MiB, 422 a body that is not what the protocol says, 429 over the rate limit (with
``Retry-After``), 507 output storage that cannot store.
"""

import hmac
import logging
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rayfarm.domain.nodes import StaleSession, UnknownNode
from rayfarm.protocol import nodes as wire
from rayfarm.server import ratelimit
from rayfarm.server.farm import Farm
from rayfarm.server.http import BodyTooLarge, read_body
from rayfarm.store import workers

log = logging.getLogger("rayfarm.nodes")
STATUS = {UnknownNode: 404, StaleSession: 409}


class Refused(Exception):
    """A node call refused with an HTTP status and a sentence (and headers, e.g. Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def storage_refused(exc: OSError) -> Refused:
    """507: the output storage is full or unwritable. The node fails the chunk (an attempt), which is retried."""
    reason = exc.strerror or type(exc).__name__
    return Refused(507, f"The farm could not store the output ({reason}); the chunk will be retried. "
                        f"Tell the administrator to check the output storage.")


def identity(request: Request) -> tuple[int, str]:
    """The node id and session of a call without a JSON body (its headers)."""
    try:
        worker_id = int(request.headers.get(wire.ID_HEADER, ""))
    except ValueError:
        raise Refused(422, f"The {wire.ID_HEADER} header is missing; send the id from register.") from None
    if not 1 <= worker_id <= wire.MAX_ID:
        raise Refused(422, f"The {wire.ID_HEADER} header is not a worker id; send the id from register.")
    return worker_id, request.headers.get(wire.SESSION_HEADER, "")


Handler = Callable[[Request, wire.Body | None], Awaitable[Response]]


class NodeGate:
    def __init__(self, farm: Farm):
        self.farm = farm
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            with self.farm.db.write() as conn:
                self._token = workers.worker_token(conn, self.farm.keys)
        return self._token

    async def _authorize(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        expected = self._token or await run_in_threadpool(self.token)
        if not given or not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
            wait = ratelimit.refused_attempts_wait(self.farm, request)
            if wait:
                raise Refused(429, ratelimit.too_many_message(self.farm.limiter, "this address with a wrong worker "
                                                              "token", wait), {"Retry-After": ratelimit.retry_after(wait)})
            ratelimit.count_refused_attempt(self.farm, request)
            raise Refused(401, "The worker token is missing or wrong; give the node the farm's token in "
                               "$RAYFARM_WORKER_TOKEN or a --token-file (`rayfarm worker-token` prints it on the "
                               "server's machine).")

    async def _parse(self, request: Request, model: type[wire.Body]) -> wire.Body:
        try:
            raw = await read_body(request, wire.MAX_BODY_BYTES)
        except BodyTooLarge:
            raise Refused(413, "The request body is larger than 16 MiB; send less.") from None
        try:
            return model.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise Refused(422, f"Invalid field {where!r}: {first['msg']}.") from None

    def endpoint(self, handler: Handler, model: type[wire.Body] | None) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                await self._authorize(request)
                body = await self._parse(request, model) if model else None
                wait = self.farm.limiter.take(ratelimit.node_key(request, body))
                if wait:
                    raise Refused(429, ratelimit.too_many_message(self.farm.limiter, "this node", wait),
                                  {"Retry-After": ratelimit.retry_after(wait)})
                return await handler(request, body)
            except Refused as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
            except (UnknownNode, StaleSession) as exc:
                return JSONResponse({"error": exc.message}, status_code=STATUS[type(exc)])
            except Exception:
                log.exception("worker call %s failed", request.url.path)
                return JSONResponse({"error": "The server hit an internal error; it was logged. Retry later."},
                                    status_code=500)
        return endpoint
