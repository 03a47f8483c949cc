"""Farm-level routes (rayfarm's own, signed like the Renderbus ones): nodes and farm totals."""

from typing import Annotated, Literal

from pydantic import Field

from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server import models as m
from rayfarm.server.farm import Farm
from rayfarm.server.renderbus import Route
from rayfarm.store import counts, workers
from rayfarm.store import tasks as task_store
from rayfarm.store.users import User


class WorkerMode(m.Body):
    workerIds: Annotated[list[m.Id], Field(min_length=1, max_length=1000)]
    mode: Literal["enable", "disable", "drain"]


def worker_list(farm: Farm, user: User, body, ctx) -> list[dict]:
    with farm.db.read() as conn:
        return workers.list_detailed(conn, None if user.is_admin else user.id)


def worker_mode(farm: Farm, user: User, body: WorkerMode, ctx) -> dict:
    if not user.is_admin:
        raise ApiError(Code.FORBIDDEN, "Only a farm administrator may enable, disable or drain nodes; ask one "
                                       "(rayfarm user create --admin).")
    with ctx.write() as conn:
        updated, touched = workers.set_mode(conn, body.workerIds, body.mode)
        if updated < len(set(body.workerIds)):  # raised inside the transaction: nothing is changed
            raise ApiError(Code.INVALID_PARAMETER, "Some of these node ids are not registered on this farm; list "
                                                   "them with `rayfarm worker list` and try again.")
        for task_id in touched:
            task_store.settle(conn, task_id)
    return {"updated": updated}


def farm_summary(farm: Farm, user: User, body, ctx) -> dict:
    with farm.db.read() as conn:
        return counts.farm_summary(conn, user)


ADMIN_ROUTES = {
    "/api/rayfarm/worker/list": Route(m.Empty, worker_list, reads=True),
    "/api/rayfarm/worker/setMode": Route(WorkerMode, worker_mode, wakes=True),
    "/api/rayfarm/farm/summary": Route(m.Empty, farm_summary, reads=True),
}
