"""The dashboard's file URLs of a task's outputs, for ``<img>``, ``<video>`` and download links (GET, session cookie):

- ``/web/tasks/{id}/outputs/{name}``: one output file (``?download=1``: as an attachment);
- ``/web/tasks/{id}/outputs.zip``: every output, one zip streamed as it is made;
- ``/web/tasks/{id}/contact-sheet.jpg`` and ``/web/tasks/{id}/preview.mp4``: the previews, made if missing or stale.

Another user's task, an unknown one and a name that is not a plain output file all answer the same 404.
Files go out with their content type, ``X-Content-Type-Options: nosniff`` and a sandboxing CSP; only raster
images and movies are inline, anything else is an attachment (an SVG or HTML output never runs as a page).
"""

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from rayfarm.domain.paths import output_name, safe_file_name
from rayfarm.files.outputs import content_type, list_outputs, zip_stream
from rayfarm.files.previews import PreviewError
from rayfarm.files.storage import inside
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server import ratelimit
from rayfarm.server.farm import Farm
from rayfarm.server.previews import FILES, MEDIA_TYPES
from rayfarm.store import queries

MAX_ID = 2**31 - 1
NOT_FOUND = "There is no such task or file."
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache",
           "Content-Security-Policy": "default-src 'none'; sandbox"}


class Missing(Exception):
    """Nothing to serve: the one 404 for unknown tasks, other users' tasks and names that are not outputs."""


def _disposition(kind: str, name: str) -> str:
    return f"{kind}; filename*=UTF-8''{quote(name)}"


def routes(farm: Farm, user_of: Callable, limit: Callable) -> list[BaseRoute]:
    """``user_of(request)`` is the signed-in user (602 otherwise); ``limit(request)`` spends a rate-limit token."""

    def task_of(request: Request):
        user = user_of(request)
        task_id = request.path_params["task_id"]
        if not 0 < task_id <= MAX_ID:
            raise Missing
        with farm.db.read() as conn:
            try:
                return queries.task_row(conn, user, task_id)
            except ApiError:
                raise Missing from None

    def output_file(request: Request) -> Path:
        task = task_of(request)
        name = safe_file_name(request.path_params["name"])
        if name is None:
            raise Missing
        try:
            path = inside(farm.previews.output_folder(task), name)
        except ApiError:
            raise Missing from None
        if path.is_symlink() or not path.is_file():
            raise Missing
        return path

    def answer(work: Callable[[Request], Response]) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                limit(request)
                return await run_in_threadpool(work, request)
            except ratelimit.Throttled as exc:
                return JSONResponse({"error": exc.message}, status_code=429,
                                    headers={"Retry-After": ratelimit.retry_after(exc.wait)})
            except ApiError as exc:
                return JSONResponse({"error": exc.message}, status_code=401 if exc.code == Code.LOGIN_REQUIRED else 403)
            except Missing:
                return JSONResponse({"error": NOT_FOUND}, status_code=404)
            except PreviewError as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)

        return endpoint

    def one_output(request: Request) -> Response:
        path = output_file(request)
        media_type, inline = content_type(path.name)
        kind = "inline" if inline and request.query_params.get("download") != "1" else "attachment"
        return FileResponse(path, media_type=media_type,
                            headers={**HEADERS, "Content-Disposition": _disposition(kind, path.name)})

    def all_outputs(request: Request) -> Response:
        task = task_of(request)
        folder = output_name(task.id, task.scene_name or "scene")
        files = list_outputs(farm.previews.output_folder(task))
        if not files:
            raise Missing
        return StreamingResponse(zip_stream(files, folder), media_type="application/zip",
                                 headers={**HEADERS, "Content-Disposition": _disposition("attachment", f"{folder}.zip")})

    def preview(kind: str) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            task = task_of(request)
            path = farm.previews.ensure(task, kind)
            name = f"{output_name(task.id, task.scene_name or 'scene')}_{FILES[kind]}"
            return FileResponse(path, media_type=MEDIA_TYPES[kind],
                                headers={**HEADERS, "Content-Disposition": _disposition("inline", name)})
        return serve

    return [
        Route("/web/tasks/{task_id:int}/outputs.zip", answer(all_outputs), methods=["GET"]),
        Route("/web/tasks/{task_id:int}/outputs/{name}", answer(one_output), methods=["GET"]),
        Route("/web/tasks/{task_id:int}/contact-sheet.jpg", answer(preview("sheet")), methods=["GET"]),
        Route("/web/tasks/{task_id:int}/preview.mp4", answer(preview("movie")), methods=["GET"]),
    ]
