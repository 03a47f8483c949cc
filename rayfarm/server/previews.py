"""A task's previews (contact sheet, preview movie): made when the task ends, in the background, or on demand.

Previews live in the user's ``previews/<taskId>/`` folder (not counted in the storage quota, like thumbnails).
One is current while no image output is newer than it; a frame rendered again makes it stale, and the next
look makes it again. Making one holds an exclusive lock on a file beside it (``flock``: every thread and
server process waits for the one making it, and a process that dies drops its lock), so a movie is encoded
once however many ask for it at the same moment.

The farm notices tasks that may have ended (a node's result, the sweep's time limits); the background job
(rayfarm/app.py) then makes the previews of those that finished with done frames, off the request path.
"""

import fcntl
import logging
import os
import threading
from pathlib import Path

from rayfarm.domain.paths import output_name
from rayfarm.files import previews as making
from rayfarm.files.outputs import Output, list_outputs
from rayfarm.files.storage import Storage
from rayfarm.files.thumbnails import Thumbnails
from rayfarm.store import queries
from rayfarm.store.db import Database

log = logging.getLogger("rayfarm.previews")
FILES = {"movie": "preview.mp4", "sheet": "contact-sheet.jpg"}
MEDIA_TYPES = {"movie": "video/mp4", "sheet": "image/jpeg"}


class Previews:
    def __init__(self, storage: Storage, thumbnails: Thumbnails):
        self.storage = storage
        self.thumbnails = thumbnails
        self._due: set[int] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ where things are

    def output_folder(self, task) -> Path:
        return self.storage.user_dir(task.user_id, "output", create=False) / output_name(task.id, task.scene_name or "scene")

    def outputs(self, task) -> list[Output]:
        return list_outputs(self.output_folder(task))

    def path(self, task, kind: str) -> Path:
        return self.storage.user_dir(task.user_id, "previews", create=False) / str(task.id) / FILES[kind]

    # ------------------------------------------------------------ state and making

    def state(self, task, outputs: list[Output]) -> dict:
        """What the listing says about each preview: made, current, its size, the frames it can show."""
        images = [o for o in outputs if o.image]
        newest = max((o.modified for o in images), default=0.0)
        answer = {}
        for kind in FILES:
            path = self.path(task, kind)
            made = path.is_file()
            answer[kind] = {"ready": made, "current": made and path.stat().st_mtime >= newest,
                            "size": path.stat().st_size if made else None, "frames": len(images)}
        return answer

    def ensure(self, task, kind: str) -> Path:
        """The preview, made now if it is missing or stale; PreviewError (a sentence) when it cannot be made."""
        images = [o for o in self.outputs(task) if o.image]
        if not images:
            raise making.PreviewError(f"Task {task.id} has no rendered image the farm can read yet, so there is no "
                                      f"{'preview movie' if kind == 'movie' else 'contact sheet'}.")
        if kind == "movie":
            making.ffmpeg()  # says how to install it, before anything is made
        path = self.path(task, kind)
        self.storage.user_dir(task.user_id, "previews")  # owner-only, like every storage folder
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(path.with_name(f".{path.name}.lock")):
            newest = max(o.modified for o in images)
            if path.is_file() and path.stat().st_mtime >= newest:
                return path  # made meanwhile, or current already
            if kind == "movie":
                count = making.preview_movie([o.path for o in images], path)
            else:
                # a thumbnail made already is decoded instead of the full image; none is made for the sheet
                thumbs = self.thumbnails.current(task.user_id, task.id)
                frames = [(str(o.frame) if o.frame is not None else o.name, thumbs.get(o.name, o.path))
                          for o in images]
                count = making.contact_sheet(frames, path)
            log.info("task %s: %s made of %d frame(s)", task.id, FILES[kind], count)
        return path

    # ------------------------------------------------------------ in the background

    def notice(self, task_id: int) -> None:
        """A task may have ended (a result, a time limit): look at it in the next background round."""
        with self._lock:
            self._due.add(task_id)

    def make_due(self, db: Database) -> None:
        """Make the previews of the noticed tasks that finished with done frames (the app's background job)."""
        with self._lock:
            due, self._due = self._due, set()
        for task_id in sorted(due):
            with db.read() as conn:
                task = queries.finished_task(conn, task_id)
            if task is None:
                continue
            for kind in ("sheet", "movie"):
                try:
                    self.ensure(task, kind)
                except making.PreviewError as exc:
                    log.info("task %s: no %s: %s", task_id, FILES[kind], exc)
                except OSError as exc:
                    log.warning("task %s: %s not made: %s", task_id, FILES[kind], exc)


class _locked:
    """An exclusive ``flock`` on ``path`` while the block runs (waits for whoever holds it)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
