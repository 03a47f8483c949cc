"""Where a lease's scene file comes from: the shared path, or a download cached by sha256."""

import logging
import os
import shutil
import threading
from pathlib import Path, PurePosixPath
from typing import Any

from rayfarm.worker.client import FarmClient
from rayfarm.worker.renderers import RenderError

log = logging.getLogger(__name__)


def _safe_name(name: str) -> str:
    name = PurePosixPath(name.replace("\\", "/")).name
    return name if name not in ("", ".", "..") else "scene"


class SceneCache:
    """Downloaded scenes under `<root>/<sha256>/<file name>`; a file is reused when its hash is known."""

    def __init__(self, root: Path, client: FarmClient) -> None:
        self.root = root
        self.client = client
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def scene_for(self, lease: dict[str, Any], work_dir: Path) -> Path | None:
        """The local scene file of a lease (None when the task has no scene)."""
        scene = lease.get("scene") or {}
        render = lease.get("render") or {}
        if "scene" in render and not render["scene"]:
            return None  # the task names no scene file (a command task): nothing to fetch
        shared = scene.get("path")
        if shared and Path(shared).is_file():
            return Path(shared)
        url = scene.get("url")
        if not url:
            if shared:
                raise RenderError(f"the scene {shared} is not readable on this node "
                                  f"and the server gave no download URL.")
            return None
        if shared:
            log.info("shared scene %s is not mounted here; downloading it", shared)
        name = _safe_name(str((lease.get("render") or {}).get("scene") or shared or "scene"))
        cached = self._cached(url, str(scene.get("sha256") or "").lower(), name, work_dir)
        inputs = lease.get("inputs") or []
        if not inputs:
            return cached
        # The scene refers to its assets by relative paths (//tex/wood.png): rebuild the user's folders
        # for this lease, with links into the cache, and render the scene from there.
        mirror = work_dir / "inputs"
        placed = self._place(mirror, str(render.get("scene") or name), cached)
        for item in inputs:
            source = self._cached(item["url"], str(item.get("sha256") or "").lower(),
                                  _safe_name(item["path"]), work_dir)
            self._place(mirror, item["path"], source)
        return placed

    def _cached(self, url: str, expected: str, name: str, work_dir: Path) -> Path:
        """The file behind ``url`` in the cache (downloaded once per sha256)."""
        if not expected:
            work_dir.mkdir(parents=True, exist_ok=True)
            return self._fetch(url, work_dir / name, None)
        folder = self.root / expected
        target = folder / name
        with self._lock(expected):
            if target.is_file():
                log.debug("file %s found in cache", target)
                os.utime(target)
                return target
            folder.mkdir(parents=True, exist_ok=True)
            return self._fetch(url, target, expected)

    @staticmethod
    def _place(mirror: Path, storage_path: str, source: Path) -> Path:
        """Link ``source`` at ``mirror/<storage path>`` (a copy where links are not possible)."""
        parts = [p for p in PurePosixPath(storage_path.replace("\\", "/")).parts if p not in ("/", "", ".", "..")]
        target = mirror.joinpath(*parts) if parts else mirror / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        return target

    def _fetch(self, url: str, target: Path, expected: str | None) -> Path:
        part = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            digest = self.client.download(url, part)
            if expected and digest != expected:
                raise RenderError(f"the downloaded scene's sha256 {digest[:12]}... does not match "
                                  f"the expected {expected[:12]}...; the download was corrupted.")
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
        log.info("downloaded scene to %s", target)
        return target
