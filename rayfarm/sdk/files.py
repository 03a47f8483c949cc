"""Moving files: upload scenes and assets (resumable, sha256-checked), list and download outputs, read logs."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rayfarm.domain.uploadjson import upload_target
from rayfarm.files.hashing import hash_file
from rayfarm.sdk.connect import Connect
from rayfarm.sdk.errors import RayfarmAPIError, RayfarmError

UPLOAD_INIT = "/api/rayfarm/file/uploadInit"
DOWNLOAD = "/api/rayfarm/file/download"
OUTPUT_FILES = "/api/render/file/operate/getOutputUserDirFile"
THUMBNAILS = "/api/render/handle/loadingFrameThumbnail"
FRAME_LOG = "/api/rayfarm/task/log"
TASK_OUTPUTS = "/api/rayfarm/task/outputs"
PREVIEW = "/api/rayfarm/task/preview"
PREVIEW_SECONDS = 1800.0  # the farm may encode the movie while the call waits
PART = 8 * 1024 * 1024
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


def _chunks(path: Path, offset: int, limit: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        handle.seek(offset)
        left = limit
        while left > 0:
            block = handle.read(min(1024 * 1024, left))
            if not block:
                return
            left -= len(block)
            yield block


class FileOperator:
    """Uploads into your input storage and downloads from your output storage."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect

    def upload(self, file: str | os.PathLike, local_path: str | None = None,
               progress: Progress | None = None) -> str:
        """Upload one file so that task.json can name it by its local path.

        Args:
            file: The file on this machine.
            local_path: The path task.json uses for it (default: the file's absolute path). The farm
                maps it the Renderbus way: ``D:/proj/a.blend`` is stored as ``/D/proj/a.blend``.
            progress: Called with (bytes sent, size) as the upload goes.

        Returns:
            The storage path the farm keeps it under. An interrupted upload resumes where it stopped;
            content the farm already has is not sent again.
        """
        source = Path(file)
        if not source.is_file():
            raise RayfarmError(f"{source} is not a file; give the path of the file to upload.")
        size = source.stat().st_size
        digest = hash_file(source)
        target = local_path or str(source.resolve())
        started = self._connect.post(UPLOAD_INIT, {"localPath": target, "size": size, "sha256": digest})
        if started["done"]:
            if progress:
                progress(size, size)
            return started["storagePath"]
        offset = started["offset"]
        url = self._connect.address(started["url"])
        while True:
            if progress:
                progress(offset, size)
            length = min(PART, size - offset)
            response = self._connect.http.put(url, params={"offset": offset}, content=_chunks(source, offset, length),
                                 timeout=self._connect.timeout)
            answer = response.json()
            if response.status_code == 409:  # the farm has a different offset: continue from there
                offset = answer["offset"]
                continue
            if response.status_code != 200:
                raise RayfarmError(f"Uploading {source.name} failed: {answer.get('error', response.text)}")
            offset = answer["offset"]
            if answer.get("done"):
                if progress:
                    progress(size, size)
                return answer["storagePath"]

    def upload_json(self, upload_json: str | os.PathLike | dict, progress: Progress | None = None) -> list[str]:
        """Upload every asset listed in a Renderbus upload.json (``{"asset": [{"local": ..., "server": ...}]}``).

        Entries are read as the official SDK's ``append_to_upload`` writes them (``server`` without a leading
        ``/`` for POSIX paths; see ``rayfarm.domain.uploadjson``); a folder entry uploads every file under it.
        Returns the storage paths."""
        data = upload_json if isinstance(upload_json, dict) else json.loads(Path(upload_json).read_text("utf-8-sig"))
        stored = []
        for item in data.get("asset", []):
            local = item["local"]
            target = upload_target(local, item.get("server"))
            source = Path(local)
            if not source.is_dir():
                stored.append(self.upload(source, target, progress))
                continue
            for file in sorted(p for p in source.rglob("*") if p.is_file()):
                relative = file.relative_to(source).as_posix()
                stored.append(self.upload(file, target.replace("\\", "/").rstrip("/") + "/" + relative, progress))
        return stored

    def output_files(self, task_id: int | None = None, tree_path: str = "/") -> list[dict[str, Any]]:
        """The files of a task's output folder (or of a folder of your output storage)."""
        body: dict[str, Any] = {"treePath": tree_path}
        if task_id:
            body["taskId"] = task_id
        return self._connect.post(OUTPUT_FILES, body)

    def thumbnails(self, frame_id: int) -> list[str]:
        """Thumbnail paths of a done frame (download them with ``download_file(path, area="thumbnails")``)."""
        return self._connect.post(THUMBNAILS, {"id": frame_id, "frameStatus": 4})

    def frame_log(self, task_id: int, frame: int | str, tail: int = 200) -> dict[str, Any]:
        """The render log of one chunk: ``frame`` is a frame id (int) or a frame index like ``"5-8"``."""
        body: dict[str, Any] = {"taskId": task_id, "tail": tail}
        body["frameId" if isinstance(frame, int) else "frameIndex"] = frame
        return self._connect.post(FRAME_LOG, body)

    def task_outputs(self, task_id: int) -> dict[str, Any]:
        """A task's output files for review: ``items`` (``name``, ``path``, ``size``, ``frame``, ``contentType``,
        ``image``, ``thumbnail``), ``total``, ``totalBytes``, ``outputFileName`` and the state of its
        ``previews`` (``movie``, ``sheet``: ``ready``, ``current``, ``size``, ``frames``)."""
        return self._connect.post(TASK_OUTPUTS, {"taskId": task_id})

    def preview(self, task_id: int, dest: str | os.PathLike, kind: str = "movie",
                progress: Progress | None = None) -> Path:
        """Download a task's preview movie (MP4) or contact sheet (``kind="sheet"``, JPEG) to ``dest``; the farm
        makes it first if it is missing or older than the task's frames (that can take a while)."""
        return self._fetch(PREVIEW, {"taskId": task_id, "kind": kind}, dest, progress,
                           max(self._connect.timeout, PREVIEW_SECONDS))

    def download_file(self, path: str, dest: str | os.PathLike, area: str = "output",
                      progress: Progress | None = None) -> Path:
        """Download one file of your storage (``path`` as listed by :meth:`output_files`) to ``dest``."""
        return self._fetch(DOWNLOAD, {"path": path, "area": area}, dest, progress, self._connect.timeout)

    def _fetch(self, route: str, body: dict, dest: str | os.PathLike, progress: Progress | None,
               timeout: float) -> Path:
        """A signed call answered with a file, written to ``dest`` (checked against its X-Sha256 when given)."""
        headers = self._connect.signed_headers(route, body)
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        path = body.get("path") or target.name
        with self._connect.http.stream("POST", self._connect.address(route), content=json.dumps(body), headers=headers,
                                       timeout=timeout) as response:
            # a refusal is a JSON envelope; a file (even a .json output) comes with its X-Sha256
            if "x-sha256" not in response.headers and response.headers.get("content-type", "").startswith(
                    "application/json"):
                answer = json.loads(response.read())
                raise RayfarmAPIError(answer["code"], answer["message"], str(response.url))
            total = int(response.headers.get("content-length", 0))
            digest, done = hashlib.sha256(), 0
            with open(partial, "wb") as handle:
                for block in response.iter_bytes():
                    handle.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        expected = response.headers.get("x-sha256")
        if expected and expected != digest.hexdigest():
            partial.unlink()
            raise RayfarmError(f"{path} arrived damaged (sha256 differs); download it again.")
        os.replace(partial, target)
        return target

    def download_task(self, task_id: int, dest: str | os.PathLike,
                      progress: Callable[[str, int, int], None] | None = None) -> list[Path]:
        """Download every output file of a task into ``dest``; returns the files written."""
        written = []
        for entry in self.output_files(task_id):
            if entry["directory"]:
                continue
            on_bytes = (lambda done, total, name=entry["fileName"]: progress(name, done, total)) if progress else None
            written.append(self.download_file(entry["filePath"], Path(dest) / entry["fileName"], progress=on_bytes))
        return written
