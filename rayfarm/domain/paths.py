"""The Renderbus mapping of a user's local paths onto farm storage (pure string work).

``D:/proj/a.blend`` and ``D:\\proj\\a.blend`` map to ``/D/proj/a.blend``; ``/mnt/x`` stays ``/mnt/x``;
``\\\\server\\share\\a.blend`` maps to ``/server/share/a.blend``.
"""

import posixpath
import re

from rayfarm.protocol.codes import ApiError, Code

# The storage ids of the Renderbus API (transfer/getBid): queryTaskInfo's ``bid`` is the output one.
CONFIG_BID, INPUT_BID, OUTPUT_BID = "30201", "10201", "20201"

_DRIVE = re.compile(r"^([A-Za-z]):(/|$)")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+#()-]{0,254}$")


def to_storage_path(local_path: str) -> str:
    """Map a user's local path to the farm's relative form, refusing anything that could escape.

    Returns a POSIX path that starts with '/' and contains no '.', '..' or empty parts.
    """
    if not isinstance(local_path, str) or not local_path.strip():
        raise ApiError(Code.INVALID_PARAMETER, "A file path is empty; give the scene's full local path.")
    if "\x00" in local_path or len(local_path) > 4096:
        raise ApiError(Code.INVALID_PARAMETER, "A file path is not valid (too long or contains a NUL byte).")
    path = local_path.strip().replace("\\", "/")
    drive = _DRIVE.match(path)
    if drive:
        path = "/" + drive.group(1).upper() + path[2:]
    while path.startswith("//"):
        path = path[1:]
    if not path.startswith("/"):
        raise ApiError(Code.INVALID_PARAMETER,
                       f"The path {local_path!r} is not absolute; give the full path as on your machine "
                       f"(for example D:/project/scene.blend).")
    parts = [part for part in path.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ApiError(Code.INVALID_PARAMETER,
                       f"The path {local_path!r} contains '.' or '..'; give a plain absolute path.")
    return "/" + "/".join(parts)


def scene_name(local_path: str) -> str:
    """The file name part of a local path (``D:/p/shot 1.blend`` -> ``shot 1.blend``)."""
    return posixpath.basename(local_path.replace("\\", "/").rstrip("/"))


def output_name(task_id: int, scene: str) -> str:
    """``<taskId>_<scene name without extension>``, made safe as a single directory name."""
    stem = scene.rsplit(".", 1)[0] if "." in scene else scene
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:100].rstrip("._") or "scene"
    return f"{task_id}_{safe}"


def safe_file_name(name: str) -> str | None:
    """A plain file name (no folders, no '..', no hidden files), or None."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or not _SAFE_NAME.match(name):
        return None
    return name


def render_file_name(path: str) -> str:
    """The file name part of a render output path, as a renderer names frames with it, made safe for the farm's
    storage; '' when the path names a folder only. ``//renders/frame_`` -> ``frame_`` (Blender adds the frame
    number: ``frame_0001.png``), ``C:\\out\\beauty_###`` -> ``beauty_###`` (``beauty_001.png``).

    Self-contained (only ``re``): the node runs this very function inside Blender on the scene's own path."""
    import re

    name = re.split(r"[\\/]", path)[-1]
    name = re.sub(r"[^A-Za-z0-9 ._+#()-]", "_", name)[:200]
    return re.sub(r"^[^A-Za-z0-9#]+", "", name)
