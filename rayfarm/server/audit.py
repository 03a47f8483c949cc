"""Running one call of the route table, and its audit record.

Both doors to the route table — the signed API (server/api.py, channel "sdk") and the dashboard (web/routes.py,
channel "dashboard") — run a call with :func:`run`, which hands the handler a :class:`Call` as its ``ctx``.
A route that changes state (``reads=False``) gets exactly one record per call once the caller is known:
* accepted: written by ``ctx.write()`` — the handler's transaction — so the change and its record commit
  together or not at all; a handler that changed nothing in the database gets it right after;
* refused (any code but 200, bad input included): written right after, in a transaction of its own, with the
  code and the sentence; the refusal changed nothing else.
Calls refused before the caller is known (no or bad credentials, replays, rate limits) have no record: nobody
can be named. Reads are not recorded, except that the signed API's queryUserProfile (what the official SDK
calls to log in) is a sign-in record. The nodes' API is not audited.
"""

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server import models
from rayfarm.server.farm import Farm
from rayfarm.store import audit as audit_store
from rayfarm.store.users import User

log = logging.getLogger("rayfarm.audit")
# the name a record gives a route: the last part of its path, unless that says too little
ACTIONS = {"/api/render/project/add": "addProject", "/api/render/project/delete": "deleteProject",
           "/api/rayfarm/worker/setMode": "setWorkerMode"}
NOT_DETAIL = {"taskId", "taskIds", "content"}  # task ids have their own column; task.json text is too long


def action(path: str) -> str:
    return ACTIONS.get(path) or path.rstrip("/").rsplit("/", 1)[-1]


def _detail(params: models.Body | None) -> str:
    """The call's parameters other than task ids, as ``name=value`` pairs (short: the record keeps 255 characters)."""
    if params is None:
        return ""
    parts = []
    for name, value in params.model_dump().items():
        if name in NOT_DETAIL or value is None or value == [] or value == "":
            continue
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{name}={text[:100]}")
    return " ".join(parts)[:255]


def _task_ids(params: models.Body | None) -> list[int]:
    ids = getattr(params, "taskIds", None) or []
    one = getattr(params, "taskId", None)
    return [int(i) for i in ids] + ([int(one)] if one else [])


class Call:
    """One call of the route table, handed to its handler as ``ctx``: who, from where, and its audit record."""

    def __init__(self, farm: Farm, path: str, *, channel: str, address: str, host: str, request_id: str,
                 changes_state: bool, platform: str | None = None):
        self.farm = farm
        self.platform = platform  # the caller's platform header (signed calls), else None
        self.path = path
        self.channel = channel  # "sdk" or "dashboard"
        self.address = address
        self.host = host  # the Host the client addressed
        self.request_id = request_id
        self.audited = changes_state
        self.user: User | None = None
        self.params: models.Body | None = None
        self.task_ids: list[int] | None = None  # set by a handler whose ids are not in its body (createTask)
        self.recorded = False

    def entry(self, code: int, message: str = "") -> audit_store.Entry:
        assert self.user is not None
        ids = self.task_ids if self.task_ids is not None else _task_ids(self.params)
        return audit_store.Entry(at=time.time(), user_id=self.user.id, access_id=self.user.access_id,
                                 action=action(self.path), path=self.path, detail=_detail(self.params),
                                 channel=self.channel, address=self.address, code=int(code), message=message,
                                 request_id=self.request_id, task_ids=tuple(ids))

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        """The handler's write transaction; a state-changing call's record is written in it, last."""
        with self.farm.db.write() as conn:
            yield conn
            if self.audited and not self.recorded:
                audit_store.record_call(conn, self.entry(Code.OK))
        self.recorded = self.recorded or self.audited

    def record_now(self, code: int, message: str) -> None:
        if not self.audited or self.recorded or self.user is None:
            return
        try:
            with self.farm.db.write() as conn:
                audit_store.record_call(conn, self.entry(code, message))
            self.recorded = True
        except Exception:  # the call's own answer matters more than its record
            log.exception("the audit record of request %s could not be written", self.request_id)

    def signed_in(self) -> None:
        """A sign-in record for the signed API's queryUserProfile (the official SDK's login)."""
        if self.channel != "sdk" or self.user is None:
            return
        with self.farm.db.write() as conn:
            audit_store.record_login(conn, at=time.time(), user_id=self.user.id, access_id=self.user.access_id,
                                     channel=self.channel, address=self.address, code=Code.OK)


def run(farm: Farm, route, call: Call, user: User, body: dict) -> Any:
    """Validate the body and run the route's handler for an authenticated ``user``; record the outcome."""
    call.user = user
    try:
        call.params = models.parse(route.model, body)
        data = route.handler(farm, user, call.params, call)
    except ApiError as exc:
        call.record_now(exc.code, exc.message)
        raise
    except Exception:
        call.record_now(Code.INTERNAL, f"internal error (request {call.request_id}; see the server log)")
        raise
    call.record_now(Code.OK, "")  # a call that changed nothing in the database: recorded now
    return data
