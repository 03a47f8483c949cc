"""Read a .blend's frame range, camera, resolution, output format and external files with Blender itself.

Blender runs in the background with a short script that prints one marked JSON line; whatever else
Blender prints on stdout (its banner, warnings, add-on noise) is ignored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MARK = "RAYFARM_SCENE_INFO "
SCRIPT = r"""
import json, os, bpy
scene = bpy.context.scene
render = scene.render
main = os.path.normpath(bpy.path.abspath(bpy.data.filepath)) if bpy.data.filepath else ""
files = []
for path in bpy.utils.blend_paths(absolute=True, packed=False, local=False):
    path = os.path.normpath(bpy.path.abspath(path))
    if path != main and os.path.isfile(path) and path not in files:
        files.append(path)
info = {
    "path": main, "version": bpy.app.version_string.split(" ")[0], "scene": scene.name,
    "frameStart": scene.frame_start, "frameEnd": scene.frame_end, "frameStep": scene.frame_step,
    "camera": scene.camera.name if scene.camera else None,
    "cameras": sorted(o.name for o in bpy.data.objects if o.type == "CAMERA"),
    "width": render.resolution_x * render.resolution_percentage // 100,
    "height": render.resolution_y * render.resolution_percentage // 100,
    "format": render.image_settings.file_format, "engine": render.engine, "files": files,
}
print(__MARK__ + json.dumps(info), flush=True)
""".replace("__MARK__", repr(MARK))
MOVIE_FORMATS = {"FFMPEG", "AVI_JPEG", "AVI_RAW"}


class SceneError(Exception):
    """Blender is missing or could not read the scene."""


@dataclass
class SceneInfo:
    path: str
    version: str
    scene: str
    frame_start: int
    frame_end: int
    frame_step: int
    camera: str | None
    cameras: list[str]
    width: int
    height: int
    format: str
    engine: str
    files: list[str] = field(default_factory=list)

    @property
    def frames(self) -> str:
        return f"{self.frame_start}-{self.frame_end}[{max(self.frame_step, 1)}]"


def find_blender(given: str | None) -> str | None:
    """The Blender program: --blender, else $RAYFARM_BLENDER, else `blender` on the PATH."""
    program = given or os.environ.get("RAYFARM_BLENDER") or "blender"
    return shutil.which(program)


def read_scene(scene: Path, blender: str, timeout: float = 180) -> SceneInfo:
    """Open ``scene`` in background Blender (no add-ons, no scripts from the file) and read its settings."""
    argv = [blender, "-b", "--factory-startup", "--disable-autoexec", str(scene), "--python-exit-code", "1",
            "--python-expr", SCRIPT]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SceneError(f"Blender did not read {scene} within {timeout:.0f} s; give --frames and --no-assets "
                         f"to submit without reading it.") from None
    except OSError as exc:
        raise SceneError(f"Cannot run Blender ({blender}): {exc}.") from None
    lines = [line[len(MARK):] for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise SceneError(f"Blender could not read {scene} (exit {done.returncode}); is it a .blend file?\n{tail}")
    data = json.loads(lines[-1])
    if not data["path"] or os.path.normpath(data["path"]) != os.path.normpath(str(scene.resolve())):
        raise SceneError(f"Blender could not open {scene}; is it a .blend file Blender {data['version']} can read?")
    return SceneInfo(path=data["path"], version=data["version"], scene=data["scene"], frame_start=data["frameStart"],
                     frame_end=data["frameEnd"], frame_step=data["frameStep"], camera=data["camera"],
                     cameras=data["cameras"], width=data["width"], height=data["height"], format=data["format"],
                     engine=data["engine"], files=data["files"])
