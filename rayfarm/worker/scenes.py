"""Where a lease's scene file comes from: the shared path, or a download cached by sha256."""

import logging
import os
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
        expected = str(scene.get("sha256") or "").lower()
        if not expected:
            return self._fetch(url, work_dir / name, None)
        folder = self.root / expected
        target = folder / name
        with self._lock(expected):
            if target.is_file():
                log.debug("scene %s found in cache", target)
                os.utime(target)
                return target
            folder.mkdir(parents=True, exist_ok=True)
            return self._fetch(url, target, expected)

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
