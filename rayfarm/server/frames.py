"""Frame routes: re-render and stop chosen frames, a frame's thumbnails and its render log (signed)."""

from typing import Annotated

from pydantic import Field

from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server import models as m
from rayfarm.server.farm import Farm
from rayfarm.server.renderbus import Route
from rayfarm.store import frame_ops, queries
from rayfarm.store.users import User

FrameIds = Annotated[list[m.TaskId], Field(max_length=100_000)]
Statuses = Annotated[list[m.StatusCode], Field(max_length=20)]


class Recommit(m.Body):
    taskIds: m.TaskIds
    status: Statuses | None = None


class FrameSelection(m.Body):
    taskId: m.TaskId
    selectAll: Annotated[int, Field(ge=0, le=1)] = 0
    ids: FrameIds | None = None
    status: Statuses | None = None


class Thumbnail(m.Body):
    id: m.TaskId
    frameStatus: m.StatusCode | None = 4


class FrameLog(m.Body):
    taskId: m.TaskId
    frameId: m.TaskId | None = None
    frameIndex: Annotated[str, Field(max_length=64)] | None = None
    tail: Annotated[int, Field(ge=1, le=100_000)] = 200



def recommit_tasks(farm: Farm, user: User, body: Recommit, ctx) -> dict:
    with ctx.write() as conn:
        return {"count": frame_ops.recommit(conn, user, body.taskIds, body.status)}


def recommit_frames(farm: Farm, user: User, body: FrameSelection, ctx) -> dict:
    with ctx.write() as conn:
        return {"count": frame_ops.recommit(conn, user, [body.taskId], body.status or [4, 5, 11], body.ids,
                                            body.selectAll == 1)}


def stop_frames(farm: Farm, user: User, body: FrameSelection, ctx) -> dict:
    with ctx.write() as conn:
        return {"count": frame_ops.stop_frames(conn, user, body.taskId, body.ids, body.selectAll == 1, body.status)}


def owned_frame(farm: Farm, user: User, frame_id: int):
    """The caller's frame; someone else's frame answers exactly like one that does not exist."""
    with farm.db.read() as conn:
        row = queries.owned_frame(conn, user, frame_id)
    if row is None:
        raise ApiError(Code.NOT_FOUND, f"Frame {frame_id} does not exist; list frames with queryTaskFrames.")
    return row


def thumbnails(farm: Farm, user: User, body: Thumbnail, ctx) -> list[str]:
    """The done frame's thumbnail paths; each is made when it is first downloaded (files/thumbnails.py)."""
    frame = owned_frame(farm, user, body.id)
    if frame.status != 4:
        return []
    return [f"/{frame.task_id}/{frame.id}/{name}" for name in farm.thumbnails.listed(user.id, frame.task_id, frame.id)]


def frame_log(farm: Farm, user: User, body: FrameLog, ctx) -> dict:
    with farm.db.read() as conn:
        queries.task_row(conn, user, body.taskId)
        if not body.frameId and not body.frameIndex:
            raise ApiError(Code.MISSING_PARAMETER, "Name the frame with frameId or frameIndex (e.g. \"5-8\").")
        row = queries.chunk_of_task(conn, body.taskId, frame_id=body.frameId, frame_index=body.frameIndex)
    if row is None:
        raise ApiError(Code.NOT_FOUND, f"Task {body.taskId} has no such frame; list frames with queryTaskFrames.")
    farm.logs.flush()  # what the nodes reported so far
    path = farm.settings.logs / str(body.taskId) / f"{row.id}.log"
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return {"frameId": row.id, "frameIndex": row.frame_index, "frameStatus": row.status,
            "lines": lines[-body.tail:], "totalLines": len(lines)}


FRAME_ROUTES: dict[str, Route] = {
    "/api/render/handle/recommitTasks": Route(Recommit, recommit_tasks, wakes=True),
    "/api/render/handle/recommitTaskFrames": Route(FrameSelection, recommit_frames, wakes=True),
    "/api/render/handle/stopTaskFrames": Route(FrameSelection, stop_frames),
    "/api/render/handle/loadingFrameThumbnail": Route(Thumbnail, thumbnails, reads=True),
    "/api/rayfarm/task/log": Route(FrameLog, frame_log, reads=True),
}
