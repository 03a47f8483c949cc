"""Watching a task render, the Renderbus way: a frame's render log (``handle/showLog``) and the task's latest
rendered image (``handle/loadTaskProcessImg``). Another user's frame or task answers like one that does not exist.
"""

import math
from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field

from rayfarm.domain.paths import output_name
from rayfarm.files.storage import inside
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server import models as m
from rayfarm.server.farm import Farm
from rayfarm.server.frames import owned_frame
from rayfarm.server.renderbus import Route
from rayfarm.store import queries
from rayfarm.store.users import User

LOG_PAGE_LINES = 1000  # a "log page" of showLog: pageSize counts these


class ShowLog(m.Body):
    renderingType: Annotated[str, Field(max_length=32)] = "render"
    pageNum: m.PageNum = 1
    pageSize: Annotated[int, BeforeValidator(m._no_bool), Field(ge=1, le=100)] = 1
    id: m.Id | None = None  # the frame (queryTaskFrames' item id)


class ProcessImage(m.Body):
    taskId: m.TaskId
    frameType: Annotated[int, BeforeValidator(m._no_bool), Field(ge=0, le=100)] | None = None


def show_log(farm: Farm, user: User, body: ShowLog, ctx) -> dict:
    """A frame's render log: ``pageSize`` pages of ``LOG_PAGE_LINES`` lines from page ``pageNum`` (items: the lines)."""
    if body.renderingType.lower() != "render":
        raise ApiError(Code.INVALID_PARAMETER, f"renderingType {ascii(body.renderingType)} is not kept on this farm; "
                                               f"ask for \"render\" (the log of the frame's render).")
    if body.id is None:
        raise ApiError(Code.MISSING_PARAMETER, "The parameter 'id' is missing: give the frame's id (from "
                                               "queryTaskFrames).")
    frame = owned_frame(farm, user, body.id)
    farm.logs.flush()  # what the nodes reported so far
    path = farm.settings.logs / str(frame.task_id) / f"{frame.id}.log"
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    start = (body.pageNum - 1) * LOG_PAGE_LINES
    items = lines[start:start + body.pageSize * LOG_PAGE_LINES]
    return {"pageCount": math.ceil(len(lines) / LOG_PAGE_LINES), "pageNum": body.pageNum, "total": len(lines),
            "size": body.pageSize, "items": items, "frameId": frame.id, "frameIndex": frame.frame_index,
            "frameStatus": frame.status}


def _when(seconds: float | None) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S") if seconds else ""


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:  # reads the header only
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _latest_image(farm: Farm, user: User, task, chunks: list) -> dict | None:
    """The newest image of the task's done chunks: its thumbnail (made when first downloaded) and the output file
    it is made from."""
    output = farm.storage.user_dir(user.id, "output", create=False)
    folder_name = output_name(task.id, task.scene_name or "scene")
    for chunk in chunks:
        names = farm.thumbnails.listed(user.id, task.id, chunk.id)
        if not names:
            continue
        name = names[-1].removesuffix(".jpg")  # the chunk's last frame
        image = inside(output, f"{folder_name}/{name}")
        stored = image.is_file()
        return {"chunk": chunk, "output": f"/{folder_name}/{name}" if stored else None,
                "thumbnail": f"/{task.id}/{chunk.id}/{names[-1]}", "size": _image_size(image) if stored else None}
    return None


def task_process_image(farm: Farm, user: User, body: ProcessImage, ctx) -> dict:
    """The task's latest rendered image. ``grabUrl`` is the output file (download it with ``/api/rayfarm/file/download``,
    area ``output``), or its thumbnail (area ``thumbnails``) if the output is gone: ``grabArea`` says which."""
    with farm.db.read() as conn:
        task = queries.task_row(conn, user, body.taskId)
        chunks = queries.latest_done_chunks(conn, task.id, body.frameType)
    latest = _latest_image(farm, user, task, chunks)
    render = task.render or {}
    width, height = (latest or {}).get("size") or (render.get("width"), render.get("height"))
    answer = {"width": width, "height": height, "block": 0, "sceneName": task.scene_name or "",
              "currentTaskType": "Render", "startTime": _when(task.started_at), "grabInfo": []}
    if latest is not None:
        chunk = latest["chunk"]
        answer["block"] = 1  # rayfarm renders whole frames: one block
        answer["grabInfo"] = [[{
            "frameId": chunk.id, "frameIndex": chunk.frame_index, "frameStatus": str(chunk.status),
            "framePercent": "100", "frameBlock": "1", "renderInfo": "",
            "grabUrl": latest["output"] or latest["thumbnail"], "grabArea": "output" if latest["output"] else "thumbnails",
            "thumbnailUrl": latest["thumbnail"], "frameUsed": str(int(round(chunk.execute_seconds or 0))),
            "startTime": _when(chunk.started_at), "endTime": _when(chunk.ended_at)}]]
    return answer


PROGRESS_ROUTES: dict[str, Route] = {
    "/api/render/handle/showLog": Route(ShowLog, show_log, reads=True),
    "/api/render/handle/loadTaskProcessImg": Route(ProcessImage, task_process_image, reads=True),
}
