"""A task's outputs for review (signed, and the dashboard's through /web/api): the files with their sizes, frame
numbers and thumbnails, and its previews (contact sheet, preview movie), made on demand.

Another user's task answers exactly like one that does not exist (937). Files are read only inside the user's
own storage folders.
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field
from starlette.responses import FileResponse, Response

from rayfarm.domain.paths import output_name
from rayfarm.files.outputs import content_type
from rayfarm.files.previews import PreviewError
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server import models as m
from rayfarm.server.farm import Farm
from rayfarm.server.previews import FILES, MEDIA_TYPES
from rayfarm.server.renderbus import Route
from rayfarm.store import queries
from rayfarm.store.users import User

FILE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache"}


class TaskOutputs(m.Body):
    taskId: m.TaskId


class Preview(m.Body):
    taskId: m.TaskId
    kind: Annotated[Literal["movie", "sheet"], Field()] = "movie"


def _task(farm: Farm, user: User, task_id: int):
    with farm.db.read() as conn:
        return queries.task_row(conn, user, task_id)  # 937 for another user's task, as for an unknown one


def task_outputs(farm: Farm, user: User, body: TaskOutputs, ctx) -> dict:
    task = _task(farm, user, body.taskId)
    folder = output_name(task.id, task.scene_name or "scene")
    found = farm.previews.outputs(task)
    thumbs = farm.thumbnails.of_task(task.user_id, task.id)  # made when the browser asks for one
    items = [{"name": o.name, "path": f"/{folder}/{o.name}", "size": o.size, "frame": o.frame,
              "lastModify": datetime.fromtimestamp(o.modified).strftime("%Y-%m-%d %H:%M:%S"),
              "contentType": content_type(o.name)[0], "image": o.image, "thumbnail": thumbs.get(o.name)}
             for o in found]
    return {"taskId": task.id, "outputFileName": folder, "total": len(items),
            "totalBytes": sum(o.size for o in found), "items": items,
            "previews": farm.previews.state(task, found)}


def preview(farm: Farm, user: User, body: Preview, ctx) -> Response:
    task = _task(farm, user, body.taskId)
    try:
        path = farm.previews.ensure(task, body.kind)
    except PreviewError as exc:
        raise ApiError(Code.NOT_FOUND, str(exc)) from None
    name = f"{output_name(task.id, task.scene_name or 'scene')}_{FILES[body.kind]}"
    return FileResponse(path, media_type=MEDIA_TYPES[body.kind], filename=name, headers=FILE_HEADERS)


OUTPUT_ROUTES: dict[str, Route] = {
    "/api/rayfarm/task/outputs": Route(TaskOutputs, task_outputs, reads=True),
    "/api/rayfarm/task/preview": Route(Preview, preview, reads=True),
}
