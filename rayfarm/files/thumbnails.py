"""Thumbnails of rendered images (JPEG, at most 320 × 320), made when first asked for and kept on disk.

When a node's ``done`` result is accepted, the chunk's image outputs are written down (``record``: one small
file, ``thumbnails/<taskId>/<frameId>/.outputs``, naming the task's output folder and the files); nothing is
decoded then, so a chunk's result costs no image work. A thumbnail is made the first time someone asks for
its file (``file``: the dashboard's thumbnail route, a download from the ``thumbnails`` area) and kept beside
that list as ``<output name>.jpg``; it is made again once its output is newer (a frame rendered again).

Every reader goes through this class: the listings (``listed`` for one chunk, ``of_task`` for a task) name
the thumbnails a chunk has or can have (made already, or an output the farm calls an image that is stored),
without making any; ``file`` makes at most one thumbnail per call; ``made`` gives a thumbnail only if it is
made and current (the contact sheet uses it instead of decoding the full image). Two requests making the
same thumbnail each write their own temporary file and rename it into place, so a reader never sees half a
JPEG, whoever wins.
"""

import json
import os
import stat
import tempfile
import threading
from pathlib import Path

from rayfarm.domain.paths import safe_file_name
from rayfarm.files.outputs import IMAGE_SUFFIXES
from rayfarm.files.storage import Storage, inside
from rayfarm.protocol.codes import ApiError

THUMBNAIL_SIZE = (320, 320)
LIST = ".outputs"  # a done chunk's image outputs: {"folder": "<taskId>_<scene>", "outputs": [names]}


def make_thumbnail(source: Path, target: Path) -> bool:
    """A JPEG thumbnail of an image Pillow can decode, written whole or not at all (a temporary file renamed
    into place); False for anything else (no fake thumbnails)."""
    from PIL import Image, UnidentifiedImageError

    temp = None
    try:
        with Image.open(source) as image:
            image.thumbnail(THUMBNAIL_SIZE)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
            with os.fdopen(fd, "wb") as handle:
                image.convert("RGB").save(handle, "JPEG", quality=85)
        os.replace(temp, target)
        return True
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
        return False


def _image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _regular(path: Path | str) -> os.stat_result | None:
    """The file's status if it is a regular file (a link is not), else None."""
    try:
        found = os.lstat(path)
    except (OSError, ValueError):
        return None
    return found if stat.S_ISREG(found.st_mode) else None


class Thumbnails:
    def __init__(self, storage: Storage):
        self.storage = storage

    def _root(self, user_id: int) -> Path:
        return self.storage.user_dir(user_id, "thumbnails", create=False)

    def _outputs(self, user_id: int) -> Path:
        return self.storage.user_dir(user_id, "output", create=False)

    # ------------------------------------------------------------ when a chunk is done

    def record(self, user_id: int, task_id: int, frame_id: int, folder: str, names: list[str]) -> int:
        """Write down the done chunk's image outputs that are stored (plain names only); how many. Nothing is
        decoded: thumbnails are made when asked for. (Plain os calls: this runs on every done chunk's way.)"""
        outputs = os.path.join(self._outputs(user_id), folder)
        kept = sorted({n for n in names if safe_file_name(n) and _image_name(n) and _regular(os.path.join(outputs, n))})
        if not kept:
            return 0
        chunk = os.path.join(self.storage.user_dir(user_id, "thumbnails"), str(task_id), str(frame_id))
        os.makedirs(chunk, mode=0o700, exist_ok=True)
        # one writer per thread: a temporary name of its own, renamed into place (a reader never sees half a list)
        temp = os.path.join(chunk, f"{LIST}.{os.getpid()}.{threading.get_ident()}.part")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                os.write(fd, json.dumps({"folder": folder, "outputs": kept}).encode())
            finally:
                os.close(fd)
            os.replace(temp, os.path.join(chunk, LIST))
        except BaseException:
            _unlink(temp)
            raise
        return len(kept)

    # ------------------------------------------------------------ listings (nothing is made)

    def _recorded(self, chunk: Path) -> tuple[str, list[str]] | None:
        try:
            data = json.loads((chunk / LIST).read_text(encoding="utf-8"))
            folder, names = data["folder"], data["outputs"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(folder, str) or safe_file_name(folder) is None or not isinstance(names, list):
            return None
        return folder, [n for n in names if isinstance(n, str) and safe_file_name(n) and _image_name(n)]

    def _chunk_names(self, user_id: int, chunk: Path) -> tuple[list[str], Path | None]:
        """Thumbnail file names (``<output>.jpg``) of a chunk folder: made ones, and recorded outputs still stored;
        and the folder of its recorded outputs (None: nothing recorded)."""
        try:
            names = {e.name for e in os.scandir(chunk)
                     if e.name.endswith(".jpg") and safe_file_name(e.name) and e.is_file(follow_symlinks=False)}
        except (FileNotFoundError, NotADirectoryError):
            return [], None
        recorded = self._recorded(chunk)
        base = None
        if recorded is not None:
            folder, outputs = recorded
            base = self._outputs(user_id) / folder
            names.update(f"{n}.jpg" for n in outputs if f"{n}.jpg" not in names and _regular(base / n))
        return sorted(names), base

    def _chunks(self, user_id: int, task_id: int) -> list[Path]:
        """The task's chunk folders, in frame id order."""
        folder = self._root(user_id) / str(int(task_id))
        try:
            return [folder / name for name in sorted((e.name for e in os.scandir(folder) if e.name.isdigit()), key=int)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def listed(self, user_id: int, task_id: int, frame_id: int) -> list[str]:
        """The chunk's thumbnail names (``<output>.jpg``), sorted: made, or to be made when asked for."""
        return self._chunk_names(user_id, self._root(user_id) / str(int(task_id)) / str(int(frame_id)))[0]

    def of_task(self, user_id: int, task_id: int) -> dict[str, str]:
        """Output name -> its thumbnail's path as loadingFrameThumbnail gives it (``/<task>/<frame>/<name>.jpg``)."""
        return {name.removesuffix(".jpg"): f"/{task_id}/{chunk.name}/{name}"
                for chunk in self._chunks(user_id, task_id) for name in self._chunk_names(user_id, chunk)[0]}

    def current(self, user_id: int, task_id: int) -> dict[str, Path]:
        """Output name -> its thumbnail file, for the thumbnails made and not older than their output (nothing
        is made: the contact sheet decodes these instead of the full images)."""
        found: dict[str, Path] = {}
        for chunk in self._chunks(user_id, task_id):
            names, base = self._chunk_names(user_id, chunk)
            for name in names:
                made = _regular(chunk / name)
                output = _regular(base / name.removesuffix(".jpg")) if base is not None else None
                if made is not None and (output is None or made.st_mtime_ns >= output.st_mtime_ns):
                    found[name.removesuffix(".jpg")] = chunk / name
        return found

    # ------------------------------------------------------------ files

    def _where(self, user_id: int, path: str) -> tuple[Path, Path | None] | None:
        """(the thumbnail, its output if recorded) for ``<task>/<frame>/<name>.jpg``; None for any other path."""
        parts = path.strip("/").split("/")
        if len(parts) != 3 or not all(p.isdigit() for p in parts[:2]) or not parts[2].endswith(".jpg") \
                or not safe_file_name(parts[2]):
            return None
        try:
            target = inside(self._root(user_id), "/".join(parts))
        except ApiError:  # the path leaves the folder (a link)
            return None
        if target.parent != self._root(user_id).resolve() / parts[0] / parts[1]:
            return None
        recorded = self._recorded(target.parent)
        name = parts[2].removesuffix(".jpg")
        if recorded is None or name not in recorded[1]:
            return target, None
        try:
            source = inside(self._outputs(user_id), f"{recorded[0]}/{name}")
        except ApiError:
            return target, None
        return target, source

    def file(self, user_id: int, path: str) -> Path | None:
        """The thumbnail file at ``<task>/<frame>/<name>.jpg``, made now if it is missing or older than its
        output; None if the chunk has no such thumbnail or its output cannot be decoded."""
        found = self._where(user_id, path)
        if found is None:
            return None
        target, source = found
        output = _regular(source) if source is not None else None
        made = _regular(target)
        if made is not None and (output is None or made.st_mtime_ns >= output.st_mtime_ns):
            return target
        if output is None or not make_thumbnail(source, target):
            return target if made is not None else None  # an older thumbnail is better than none
        return target
