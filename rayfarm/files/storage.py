"""The farm's file storage: each user's input and output folders, and the shared roots.

Every path that comes from a user goes through :meth:`Storage.inside`, which refuses anything
that would leave its root ('..', absolute tricks, symlinks pointing outside).
"""

import os
import shutil
import stat
from pathlib import Path

from rayfarm.domain.paths import to_storage_path
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.protocol.text import unstorable


def inside(root: Path, relative: str) -> Path:
    """``root/relative`` resolved, or ApiError(600) if it would escape ``root`` (or is no path at all)."""
    if unstorable(relative):
        raise ApiError(Code.INVALID_PARAMETER, "A path contains a NUL character or text that is not valid Unicode; "
                                               "give a plain file path.")
    root = root.resolve()
    candidate = (root / relative.lstrip("/")).resolve()
    if candidate != root and root not in candidate.parents:
        raise ApiError(Code.INVALID_PARAMETER, f"The path {relative!r} leaves the storage folder; use a path inside it.")
    return candidate


class Storage:
    def __init__(self, root: Path, shared_roots: list[Path] | None = None):
        self.root = Path(root)
        self.shared_roots = [Path(r).resolve() for r in (shared_roots or [])]

    def user_dir(self, user_id: int, kind: str, create: bool = True) -> Path:
        """``<root>/<user>/<kind>``, made owner-only (every level) unless ``create`` is False (reads)."""
        path = self.root / str(int(user_id)) / kind
        if create and not path.is_dir():
            for folder in (self.root, path.parent, path):
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def input_path(self, user_id: int, local_path: str) -> Path:
        """Where a user's local path lives in their input storage (may not exist yet; nothing is created)."""
        return inside(self.user_dir(user_id, "input", create=False), to_storage_path(local_path))

    def measure(self, user_id: int) -> int:
        """The bytes a user stores as the storage quota counts them: uploaded content (kept once, in ``cas``;
        ``input`` holds links to it) and render outputs. Thumbnails and partial uploads are not counted."""
        total = 0
        for kind in ("cas", "output"):
            for folder, _dirs, names in os.walk(self.user_dir(user_id, kind, create=False)):
                for name in names:
                    info = os.lstat(os.path.join(folder, name))
                    total += info.st_size if stat.S_ISREG(info.st_mode) else 0
        return total

    def content_path(self, user_id: int, sha256: str, create: bool = True) -> Path:
        """Where uploaded content is kept, once per sha256 (``cas``); ``input`` holds links to it."""
        return self.user_dir(user_id, "cas", create=create) / sha256

    def place(self, user_id: int, sha256: str, local_path: str) -> None:
        """Link the stored content where the user's local path maps (replacing what was there)."""
        self.user_dir(user_id, "input")  # owner-only
        target = self.input_path(user_id, local_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.link")
        if temp.exists():
            temp.unlink()
        try:
            os.link(self.content_path(user_id, sha256), temp)
        except OSError:
            shutil.copyfile(self.content_path(user_id, sha256), temp)
        os.replace(temp, target)

    def check_placeable(self, user_id: int, local_path: str) -> None:
        """600 unless a file can be placed where the local path maps: not onto a folder, not under a file."""
        root = self.user_dir(user_id, "input", create=False).resolve()
        target = self.input_path(user_id, local_path)  # refuses paths that leave the storage
        if target.is_dir():
            raise ApiError(Code.INVALID_PARAMETER, f"{local_path!r} is a folder in your input storage; upload the "
                                                   f"file under its own name.")
        for parent in target.parents:
            if parent == root or root not in parent.parents:
                break
            if parent.exists() and not parent.is_dir():
                raise ApiError(Code.INVALID_PARAMETER, f"{local_path!r} would be inside {parent.name!r}, which is a "
                                                       f"file in your input storage; choose another path.")

    def output_dir(self, user_id: int, name: str) -> Path:
        return inside(self.user_dir(user_id, "output"), name)

    def locate_scene(self, user_id: int, local_path: str) -> dict:
        """Find a scene the farm can read: user input storage first, then the shared roots.

        Returns {"scene_root": "input"|"shared", "scene": path}; 600 naming the file otherwise.
        """
        mapped = to_storage_path(local_path)
        stored = inside(self.user_dir(user_id, "input", create=False), mapped)
        if stored.is_file():
            return {"scene_root": "input", "scene": mapped}
        posix = local_path.replace("\\", "/")
        if posix.startswith("/"):
            for root in self.shared_roots:
                candidate = Path(os.path.normpath(posix)).resolve()
                if (root == candidate or root in candidate.parents) and candidate.is_file():
                    return {"scene_root": "shared", "scene": str(candidate)}
        raise ApiError(Code.INVALID_PARAMETER,
                       f"The scene file {local_path!r} is not on the farm: upload it first (it maps to {mapped} in "
                       f"your input storage) or keep it under a shared root the farm mounts.")

    def shared_root_of(self, path: Path) -> str | None:
        """The shared root that holds ``path`` (a resolved path), or None."""
        for root in self.shared_roots:
            if root in path.parents:
                return str(root)
        return None

    def locate_inputs(self, user_id: int, storage_paths: list[str], limit: int = 10_000) -> list[str]:
        """The uploaded files of upload.json's entries (a folder entry: every file under it, in order); 600
        naming the entries that are not on the farm, or when there are more than ``limit`` files."""
        root = self.user_dir(user_id, "input", create=False)
        found: list[str] = []
        missing = []
        for path in storage_paths:
            target = inside(root, path)
            if target.is_file():
                found.append(path)
            elif target.is_dir():
                found += self._files_under(root, target)
            else:
                missing.append(path)
            if len(found) > limit:
                raise ApiError(Code.INVALID_PARAMETER, f"upload.json names more than {limit} files (folders count "
                                                       f"every file under them); pack them into fewer files.")
        if missing:
            raise ApiError(Code.INVALID_PARAMETER,
                           f"upload.json lists files that are not on the farm: {', '.join(missing[:5])}"
                           f"{' and more' if len(missing) > 5 else ''}; upload them first (rayfarm upload --upload-json).")
        return list(dict.fromkeys(found))

    @staticmethod
    def _files_under(root: Path, folder: Path) -> list[str]:
        """Storage paths of the regular files under a folder of the input storage (links are not followed)."""
        resolved = root.resolve()
        files = []
        for current, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(names):
                path = Path(current) / name
                if name.startswith(".") or path.is_symlink() or not path.is_file():
                    continue  # the farm's own partial links (".name.link"), anything that is not a plain file
                files.append("/" + str(inside(resolved, str(path.relative_to(resolved)))
                                       .relative_to(resolved)).replace(os.sep, "/"))
        return files
