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
# Runs inside Blender. Files: every path Blender lists (images, libraries and what they use, sounds, fonts,
# caches, volumes; not packed data), with image sequences and UDIM tiles expanded to their files. With a
# folder after `--`, the scene, and each library, that names files by absolute paths is also saved there
# as a copy whose paths are relative to its own folder (`//../tex/a.png`): a node rebuilds the user's
# folders around the scene, where relative paths resolve and the user's absolute ones do not.
SCRIPT = r"""
import json, os, re, sys, bpy
scene = bpy.context.scene
render = scene.render
main = os.path.normpath(bpy.path.abspath(bpy.data.filepath)) if bpy.data.filepath else ""
args = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []

def numbered(path, sequence):
    folder, name = os.path.split(path)
    if "<UDIM>" in name or "<UVTILE>" in name:
        pattern = re.escape(name).replace(re.escape("<UDIM>"), r"\d{4}").replace(re.escape("<UVTILE>"), r"u\d+_v\d+")
    elif sequence and re.search(r"\d", name):
        last = list(re.finditer(r"\d+", name))[-1]
        pattern = re.escape(name[:last.start()]) + r"\d+" + re.escape(name[last.end():])
    else:
        return [path]
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if re.fullmatch(pattern, n)]

def absolute(path):
    return bool(path) and not path.startswith("//") and (os.path.isabs(path) or bool(re.match(r"[A-Za-z]:[\\/]", path)))

def relative_copy(target):
    bpy.ops.file.make_paths_relative()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=target, copy=True, relative_remap=False)

sequences = set()
for items, is_sequence in ((bpy.data.images, lambda i: i.source == "SEQUENCE"),
                           (bpy.data.movieclips, lambda c: c.source == "SEQUENCE"),
                           (bpy.data.volumes, lambda v: v.is_sequence)):
    for item in items:
        if item.filepath and is_sequence(item):
            sequences.add(os.path.normpath(bpy.path.abspath(item.filepath, library=item.library)))
files, seen = [], {main}
for path in bpy.utils.blend_paths(absolute=True, packed=False, local=False):
    path = os.path.normpath(bpy.path.abspath(path))
    for file in numbered(path, path in sequences):
        if file not in seen and os.path.isfile(file):
            seen.add(file)
            files.append(file)
owners = set()  # the libraries that name what the scene uses from them by absolute paths
for items in (bpy.data.images, bpy.data.sounds, bpy.data.fonts, bpy.data.movieclips, bpy.data.cache_files,
              bpy.data.volumes):
    for item in items:
        if item.library and absolute(item.filepath) and not getattr(item, "packed_file", None):
            owners.add(item.library)
owners.update(library.parent for library in bpy.data.libraries if library.parent and absolute(library.filepath))
libraries = sorted({os.path.normpath(bpy.path.abspath(l.filepath, library=l.parent)) for l in owners})
info = {
    "path": main, "version": bpy.app.version_string.split(" ")[0], "scene": scene.name,
    "frameStart": scene.frame_start, "frameEnd": scene.frame_end, "frameStep": scene.frame_step,
    "camera": scene.camera.name if scene.camera else None,
    "cameras": sorted(o.name for o in bpy.data.objects if o.type == "CAMERA"),
    "width": render.resolution_x * render.resolution_percentage // 100,
    "height": render.resolution_y * render.resolution_percentage // 100,
    "format": render.image_settings.file_format, "engine": render.engine, "files": files, "copies": {},
}
if args and main:
    if any(absolute(p) for p in bpy.utils.blend_paths(absolute=False, packed=False, local=True)):
        info["copies"][main] = os.path.join(args[0], os.path.basename(main))
        relative_copy(info["copies"][main])
    for number, library in enumerate(libraries, 1):
        if os.path.isfile(library):
            bpy.ops.wm.open_mainfile(filepath=library, load_ui=False, use_scripts=False)
            info["copies"][library] = os.path.join(args[0], str(number), os.path.basename(library))
            relative_copy(info["copies"][library])
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
    copies: dict[str, str] = field(default_factory=dict)  # the scene or a library -> its copy to upload instead

    @property
    def frames(self) -> str:
        return f"{self.frame_start}-{self.frame_end}[{max(self.frame_step, 1)}]"


def find_blender(given: str | None) -> str | None:
    """The Blender program: --blender, else $RAYFARM_BLENDER, else `blender` on the PATH."""
    program = given or os.environ.get("RAYFARM_BLENDER") or "blender"
    return shutil.which(program)


def read_scene(scene: Path, blender: str, timeout: float = 180, copy_dir: Path | None = None) -> SceneInfo:
    """Open ``scene`` in background Blender (no add-ons, no scripts from the file) and read its settings.

    With ``copy_dir``, the scene and libraries naming files by absolute paths are saved there with relative
    ones (``copies``).
    """
    argv = [blender, "-b", "--factory-startup", "--disable-autoexec", str(scene), "--python-exit-code", "1",
            "--python-expr", SCRIPT]
    if copy_dir:
        argv += ["--", str(copy_dir)]
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
                     engine=data["engine"], files=data["files"], copies=data["copies"])
