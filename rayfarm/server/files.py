"""File routes: the user's outputs listed and downloaded, and resumable uploads (signed like every Renderbus call).

Uploads are resumable: ``uploadInit`` (signed) opens a session whose unguessable id is the
capability for ``PUT /v1/upload/{id}`` (raw bytes at an offset); the file is checked against its
sha256, kept once per content in the user's ``cas`` folder and linked where the local path maps.
"""

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route as HttpRoute

from rayfarm.domain.paths import output_name, to_storage_path
from rayfarm.files.hashing import hash_file, sha256_of
from rayfarm.files.storage import inside
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server import models as m
from rayfarm.server import ratelimit
from rayfarm.server.farm import Farm
from rayfarm.server.renderbus import Route
from rayfarm.store import queries, uploads
from rayfarm.store.users import User

MAX_UPLOAD = 64 * 1024**3


class OutputFiles(m.Body):
    taskId: m.TaskId | None = None
    treePath: Annotated[str, Field(max_length=4096)] = "/"


class Download(m.Body):
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    area: Annotated[str, Field(pattern="^(output|thumbnails)$")] = "output"


class UploadInit(m.Body):
    localPath: Annotated[str, Field(min_length=1, max_length=4096)]
    size: Annotated[int, Field(ge=0, le=MAX_UPLOAD)]
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]


def _entry(path: Path, root: Path) -> dict:
    stat = path.stat()
    directory = path.is_dir()
    return {"fileName": path.name, "fileSize": 0 if directory else stat.st_size,
            "lastModify": datetime.fromtimestamp(stat.st_mtime).strftime("%Y-%m-%d %H:%M:%S"),
            "fileType": "directory" if directory else (path.suffix.lstrip(".").lower() or "file"),
            "filePath": "/" + str(path.relative_to(root)), "directory": directory, "isArrears": False}


def output_files(farm: Farm, user: User, body: OutputFiles, ctx) -> list[dict]:
    root = farm.storage.user_dir(user.id, "output", create=False)
    if body.taskId:
        with farm.db.read() as conn:
            task = queries.task_row(conn, user, body.taskId)
        folder = root / output_name(task.id, task.scene_name or "scene")
    else:
        folder = inside(root, body.treePath)
    if not folder.is_dir():
        return []
    return [_entry(p, root) for p in sorted(folder.iterdir()) if not p.name.startswith(".")]


def download(farm: Farm, user: User, body: Download, ctx) -> Response:
    root = farm.storage.user_dir(user.id, body.area, create=False)
    path = inside(root, body.path)
    if body.area == "thumbnails":
        path = farm.thumbnails.file(user.id, body.path) or path  # made now if missing or older than its output
    if not path.is_file():
        raise ApiError(Code.NOT_FOUND, f"There is no file {body.path!r} in your {body.area}; list files with "
                                       f"getOutputUserDirFile.")
    return FileResponse(path, filename=path.name, headers={"X-Sha256": sha256_of(path)})


def upload_init(farm: Farm, user: User, body: UploadInit, ctx) -> dict:
    storage_path = to_storage_path(body.localPath)
    farm.storage.check_placeable(user.id, body.localPath)
    blob = farm.storage.content_path(user.id, body.sha256, create=False)
    if blob.is_file() and blob.stat().st_size == body.size:
        farm.storage.place(user.id, body.sha256, body.localPath)
        return {"uploadId": None, "offset": body.size, "done": True, "storagePath": storage_path}
    with ctx.write() as conn:
        expired = uploads.drop_expired(conn, user.id, time.time())
        upload_id = uploads.begin(conn, user, body.localPath, storage_path, body.size, body.sha256)
    for old in expired:  # partial files of sessions that can no longer finish
        (farm.storage.user_dir(user.id, "uploads") / old).unlink(missing_ok=True)
    part = farm.storage.user_dir(user.id, "uploads") / upload_id
    offset = part.stat().st_size if part.exists() else 0
    return {"uploadId": upload_id, "offset": offset, "done": False, "storagePath": storage_path,
            "url": f"/v1/upload/{upload_id}"}


def _session(farm: Farm, upload_id: str):
    if len(upload_id) > 64 or "\x00" in upload_id:  # not an id uploadInit hands out
        return None
    with farm.db.read() as conn:
        row = uploads.get(conn, upload_id)
    if row is None or row.completed_at is not None or row.created_at < time.time() - uploads.LIFETIME:
        return None
    return row


def _unknown_upload(farm: Farm, request: Request, message: str) -> Response:
    """404 for an unknown upload id; 429 once this address has guessed too many (rate limit)."""
    wait = ratelimit.refused_attempts_wait(farm, request)
    if wait:
        return JSONResponse({"error": ratelimit.too_many_message(farm.limiter, "this address with unknown upload ids",
                                                                 wait)},
                            status_code=429, headers={"Retry-After": ratelimit.retry_after(wait)})
    ratelimit.count_refused_attempt(farm, request)
    return JSONResponse({"error": message}, status_code=404)


async def _live_upload(farm: Farm, request: Request) -> tuple[object, Path] | Response:
    """The upload session of the URL and its partial file; the refusal to answer when there is none."""
    row = await run_in_threadpool(_session, farm, request.path_params["upload_id"])
    if row is None:
        return _unknown_upload(farm, request, "This upload is unknown, finished or expired; start it again with "
                                              "uploadInit.")
    return row, farm.storage.user_dir(row.user_id, "uploads") / row.id


async def upload_put(farm: Farm, request: Request) -> Response:
    found = await _live_upload(farm, request)
    if isinstance(found, Response):
        return found
    row, part = found
    have = part.stat().st_size if part.exists() else 0
    try:
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        offset = -1
    if offset != have:
        return JSONResponse({"error": f"Send the bytes from offset {have}.", "offset": have}, status_code=409)
    received = have
    with open(part, "ab") as handle:
        async for chunk in request.stream():
            received += len(chunk)
            if received > row.size:
                handle.truncate(have)
                return JSONResponse({"error": "More bytes than the declared size; start again."}, status_code=400)
            handle.write(chunk)
    if received < row.size:
        return JSONResponse({"offset": received, "done": False})
    digest = await run_in_threadpool(hash_file, part)
    if digest != row.sha256:
        part.unlink()
        return JSONResponse({"error": "The uploaded bytes do not match the sha256 given; upload the file again.",
                             "offset": 0}, status_code=422)

    def finish():
        blob = farm.storage.content_path(row.user_id, row.sha256)
        replaced = blob.stat().st_size if blob.is_file() else 0  # content stored once: counted once
        os.replace(part, blob)
        with farm.db.write() as conn:  # the bytes are stored: they count, even if they cannot be placed
            uploads.finish(conn, row.id, row.user_id, received - replaced)
        farm.storage.check_placeable(row.user_id, row.local_path)  # a folder or file may have appeared there meanwhile
        farm.storage.place(row.user_id, row.sha256, row.local_path)

    try:
        await run_in_threadpool(finish)
    except ApiError as exc:
        return JSONResponse({"error": exc.message}, status_code=409)
    return JSONResponse({"offset": received, "done": True, "storagePath": row.storage_path})


async def upload_status(farm: Farm, request: Request) -> Response:
    found = await _live_upload(farm, request)
    if isinstance(found, Response):
        return found
    row, part = found
    return JSONResponse({"offset": part.stat().st_size if part.exists() else 0, "size": row.size, "done": False})


FILE_ROUTES: dict[str, Route] = {
    "/api/render/file/operate/getOutputUserDirFile": Route(OutputFiles, output_files, reads=True),
    "/api/rayfarm/file/download": Route(Download, download, reads=True),
    "/api/rayfarm/file/uploadInit": Route(UploadInit, upload_init),
}


def http_routes(farm: Farm) -> list[HttpRoute]:
    async def put(request: Request) -> Response:
        return await upload_put(farm, request)

    async def status(request: Request) -> Response:
        return await upload_status(farm, request)

    return [HttpRoute("/v1/upload/{upload_id}", put, methods=["PUT"]),
            HttpRoute("/v1/upload/{upload_id}", status, methods=["GET"])]


