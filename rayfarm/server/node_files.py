"""Files between the farm and its nodes: what a lease names (scene, inputs, with sizes and hashes), the
downloads of those files, and the outputs nodes upload (stored, counted in the user's storage, written down for their thumbnails).

A node reaches a file only under a lease it holds now, with its current session.
"""

import asyncio
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from rayfarm.domain.paths import output_name, safe_file_name
from rayfarm.files.hashing import sha256_of
from rayfarm.protocol import nodes as wire
from rayfarm.server.farm import Farm
from rayfarm.server.node_http import Refused, identity, storage_refused
from rayfarm.store import leases, quotas, workers
from rayfarm.store.leases import Claimed

log = logging.getLogger("rayfarm.nodes")
MAX_OUTPUT_BYTES = 8 * 1024**3
FLUSH_BYTES = 1024**2  # an output's bytes are written off the event loop in pieces of about this size


class _Part:
    """An output file on its way in: the bytes go to a temporary file beside its place (made at the first
    write), which is renamed over the place once every byte is there. ``write`` runs in a thread: an output up
    to FLUSH_BYTES costs one trip there, however many pieces the node's request came in."""

    def __init__(self, target: Path):
        self.target = target
        self.temp: str | None = None
        self.handle = None

    def write(self, pieces: list[bytes]) -> None:
        if self.handle is None:
            fd, self.temp = tempfile.mkstemp(dir=self.target.parent, prefix=".upload-")
            self.handle = os.fdopen(fd, "wb")
        self.handle.writelines(pieces)

    def place(self) -> int:
        """Put the complete file in place; the size of the file it replaced (0 if none). On the event loop, so
        that nothing can cancel the call between the file taking its place and its bytes being counted."""
        if self.handle is None:
            self.write([])
        self.handle.close()
        replaced = self.target.stat().st_size if self.target.is_file() else 0
        os.replace(self.temp, self.target)
        self.temp = None
        return replaced

    def discard(self) -> None:
        if self.handle is not None and not self.handle.closed:
            self.handle.close()
        if self.temp is not None and os.path.exists(self.temp):
            os.unlink(self.temp)


class NodeFiles:
    def __init__(self, farm: Farm):
        self.farm = farm

    # ------------------------------------------------------------ what a lease names

    def scene_file(self, task) -> Path | None:
        render = task.render or {}
        if render.get("scene_root") == "input":
            return self.farm.storage.input_path(task.user_id, render["scene"])
        if render.get("scene_root") == "shared":
            return Path(render["scene"])
        return None

    def _reads_files(self, task) -> bool:
        return self.scene_file(task) is not None or bool((task.render or {}).get("inputs"))

    async def lease_answers(self, claimed: list[Claimed]) -> list[wire.Lease]:
        """The leases' JSON; off the event loop when it reads files (a scene's or inputs' size and sha256)."""
        if any(self._reads_files(item.task) for item in claimed):
            return await run_in_threadpool(lambda: [self.lease_json(i.frame, i.task) for i in claimed])
        return [self.lease_json(item.frame, item.task) for item in claimed]

    def lease_json(self, frame, task) -> wire.Lease:
        render = dict(task.render or {})
        location = self.scene_file(task)
        # a task without a scene (a command that names none) has nothing to download
        url = f"{wire.API}/scene/{frame.id}" if location is not None else None
        scene: wire.FileRef = {"url": url, "path": None, "root": None, "sha256": None, "size": None}
        if location is not None and location.is_file():
            scene.update(sha256=sha256_of(location), size=location.stat().st_size)
            if render.get("scene_root") == "shared":
                # the root too: a confined render may read the whole shared root (the scene's references)
                scene["path"], scene["root"] = str(location), self.farm.storage.shared_root_of(location)
        inputs = []
        for index, path in enumerate(render.get("inputs") or []):
            stored = self.farm.storage.input_path(task.user_id, path)
            if stored.is_file():
                inputs.append({"path": path, "url": f"{wire.API}/input/{frame.id}/{index}",
                               "sha256": sha256_of(stored), "size": stored.stat().st_size})
        return {"leaseId": frame.lease_id, "frameId": frame.id, "taskId": task.id, "userId": task.user_id,
                "frameIndex": frame.frame_index, "start": frame.start_frame, "end": frame.end_frame,
                "step": frame.step, "attempt": frame.attempts + 1, "jobStopTime": task.job_stop_time,
                "stallTimeout": render.get("stall_timeout") or 0,
                "leaseExpires": frame.lease_expires, "render": render, "scene": scene, "inputs": inputs,
                "outputName": output_name(task.id, task.scene_name or "scene")}

    # ------------------------------------------------------------ downloads

    def _leased_task(self, request: Request):
        """The task of the frame in the URL, if this node holds a valid lease on that frame."""
        frame_id = int(request.path_params["frame_id"])
        worker_id, session = identity(request)
        if frame_id > wire.MAX_ID:
            return None
        with self.farm.db.read() as conn:
            workers.check_session(conn, worker_id, session)
            return leases.leased_task(conn, worker_id, frame_id)

    async def _send(self, path: Path | None, what: str) -> Response:
        if path is None or not path.is_file():
            raise Refused(404, f"No {what} for that frame under a lease of this worker.")
        return FileResponse(path, headers={"X-Sha256": await run_in_threadpool(sha256_of, path)})

    async def scene(self, request: Request, body: None) -> Response:
        task = await run_in_threadpool(self._leased_task, request)
        return await self._send(self.scene_file(task) if task else None, "scene")

    async def input(self, request: Request, body: None) -> Response:
        task = await run_in_threadpool(self._leased_task, request)
        listed = ((task.render or {}).get("inputs") or []) if task else []
        index = int(request.path_params["index"])
        path = self.farm.storage.input_path(task.user_id, listed[index]) if index < len(listed) else None
        return await self._send(path, "input file")

    # ------------------------------------------------------------ outputs

    def _output_target(self, worker_id: int, session: str, lease_id: str, name: str) -> tuple[Path, int] | None:
        """Where the leased chunk's output file goes, and whose storage it counts in."""
        with self.farm.db.read() as conn:
            workers.check_session(conn, worker_id, session)
            task = leases.task_of_lease(conn, worker_id, lease_id)
        if task is None:
            return None
        try:
            folder = self.farm.storage.output_dir(task.user_id, output_name(task.id, task.scene_name or "scene"))
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_refused(exc) from None
        return folder / name, task.user_id

    async def output(self, request: Request, body: None) -> Response:
        lease_id = request.path_params["lease_id"]
        name = safe_file_name(request.path_params["file_name"])
        if name is None:
            raise Refused(422, "The output file name must be a plain file name (no '/', no '..').")
        worker_id, session = identity(request)
        if len(lease_id) > 64 or "\x00" in lease_id:  # not a lease id this farm hands out
            return JSONResponse({"accepted": False})
        found = await run_in_threadpool(self._output_target, worker_id, session, lease_id, name)
        if found is None:
            return JSONResponse({"accepted": False})
        target, user_id = found
        part, pending, held, digest, size = _Part(target), [], 0, hashlib.sha256(), 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_OUTPUT_BYTES:
                    raise Refused(413, "The output file is larger than the farm accepts (8 GiB).")
                digest.update(chunk)
                pending.append(chunk)
                held += len(chunk)
                if held >= FLUSH_BYTES:
                    await asyncio.to_thread(part.write, pending)
                    pending, held = [], 0
            if pending:
                await asyncio.to_thread(part.write, pending)
            replaced = part.place()
        except OSError as exc:
            raise storage_refused(exc) from None
        finally:
            part.discard()  # a temporary file a failure left behind (nothing to do once the file is in place)
        # Stored whatever the user's quota: it counts, so their next upload or submit may be refused.
        if size != replaced:
            await self.farm.writer.run(lambda conn: quotas.add_stored(conn, user_id, size - replaced))
        stored: wire.Stored = {"accepted": True, "size": size, "sha256": digest.hexdigest()}
        return JSONResponse(stored)

    def done_outputs(self, task, frame, names: list[str]) -> None:
        """Write down a done chunk's image outputs for their thumbnails, which are made when first asked for
        (files/thumbnails.py): no image is decoded on a chunk's way. A failure is logged (the result is
        committed already)."""
        try:
            self.farm.thumbnails.record(task.user_id, task.id, frame.id, output_name(task.id, task.scene_name or "scene"),
                                        names)
        except OSError as exc:
            log.warning("no thumbnails for task %s frame %s: %s", task.id, frame.id, exc)
