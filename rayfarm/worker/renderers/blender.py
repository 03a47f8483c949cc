"""Blender: one `blender -b ... -a` run per chunk, or chunk after chunk in a persistent session
(blender_session.py); progress from its `Fra:/Sample/Saved:` lines.

Frames are named as the artist expects: by task.json's ``Output_path`` file name when it gives one, else by the
scene's own output path (its file name and ``#`` padding: ``//renders/frame_`` renders ``frame_0001.png``),
always in the chunk's output folder; a scene whose output path names only a folder gets ``<scene>_####``.
"""

import functools
import inspect
import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, ClassVar

from rayfarm.domain.paths import render_file_name
from rayfarm.worker.renderers import blender_session
from rayfarm.worker.renderers.base import Chunk, Renderer, RenderError, scene_stem

log = logging.getLogger(__name__)

EXECUTABLE = "blender"

# task.json Render_Format (any case) -> Blender's `-F` name
FORMATS = {
    "PNG": "PNG",
    "JPEG": "JPEG", "JPG": "JPEG",
    "OPEN_EXR": "OPEN_EXR", "OPENEXR": "OPEN_EXR", "EXR": "OPEN_EXR",
    "OPEN_EXR_MULTILAYER": "OPEN_EXR_MULTILAYER", "MULTILAYER": "OPEN_EXR_MULTILAYER",
    "TIFF": "TIFF", "TIF": "TIFF",
    "BMP": "BMP",
    "TARGA": "TGA", "TGA": "TGA",
    "TARGA_RAW": "RAWTGA", "RAWTGA": "RAWTGA",
    "IRIS": "IRIS", "RGB": "IRIS", "IRIZ": "IRIZ",
    "HDR": "HDR", "RADIANCE_HDR": "HDR",
    "CINEON": "CINEON", "CIN": "CINEON",
    "DPX": "DPX",
    "JP2": "JP2", "JPEG2000": "JP2",
    "WEBP": "WEBP",
}
MOVIES = {"FFMPEG", "AVI_JPEG", "AVI_RAW", "AVIJPEG", "AVIRAW", "MPEG", "MP4", "MOV", "MKV", "AVI"}

FRAME = re.compile(r"^Fra:(-?\d+)\s")
SAMPLE = re.compile(r"\bSample (\d+)/(\d+)")
TILE = re.compile(r"\bTile (\d+)/(\d+)")
RENDERED_TILES = re.compile(r"\bRendered (\d+)/(\d+) Tiles")
EEVEE = re.compile(r"\bRendering (\d+) / (\d+) samples")
SAVED = re.compile(r"^Saved: '")
VERSION = re.compile(r"^Blender (\d+\.\d+(?:\.\d+)?)")


def blender_format(name: str | None) -> str | None:
    """Blender's `-F` value for a task.json format name; None keeps the scene's own format."""
    if not name:
        return None
    key = name.strip().upper().replace("-", "_").replace(" ", "_")
    if key in FORMATS:
        return FORMATS[key]
    if key in MOVIES:
        raise RenderError(f"the output format {name!r} is a movie; a farm renders frames separately, "
                          f"so choose an image format such as PNG or OPEN_EXR.")
    known = ", ".join(sorted({"PNG", "JPEG", "OPEN_EXR", "OPEN_EXR_MULTILAYER", "TIFF", "BMP", "TARGA", "HDR",
                              "WEBP", "JP2", "DPX", "CINEON", "IRIS"}))
    raise RenderError(f"the output format {name!r} is not known to Blender; use one of {known}.")


def naming_script(output_dir: Path, fallback: str) -> str:
    """Python run inside Blender: the output path is the chunk's folder and the scene's own file name pattern
    (``render_file_name`` of its output path, the very function), ``fallback`` when it names a folder only."""
    return "\n".join([inspect.getsource(render_file_name),
                      f"name = render_file_name(scene.render.filepath) or {fallback!r}",
                      f"scene.render.filepath = {str(output_dir) + '/'!r} + name"])


def settings_script(camera: str | None, width: int | None, height: int | None,
                    naming: str | None = None) -> str | None:
    """Python run inside Blender (via --python-expr) to apply task.json's camera and resolution (and the naming
    of the frames, ``naming_script``)."""
    lines = ["import bpy", "scene = bpy.context.scene", *([naming] if naming else [])]
    if camera:
        message = f"the scene has no camera object named {camera!r}"
        lines += [f"camera = bpy.data.objects.get({camera!r})",
                  "if camera is None or camera.type != 'CAMERA':",
                  f"    raise LookupError({message!r})",
                  "scene.camera = camera"]
    if width:
        lines.append(f"scene.render.resolution_x = {int(width)}")
    if height:
        lines.append(f"scene.render.resolution_y = {int(height)}")
    if width or height:
        lines.append("scene.render.resolution_percentage = 100")
    return "\n".join(lines) if len(lines) > 2 else None


@functools.lru_cache(maxsize=8)
def blender_version(program: str) -> str | None:
    """"3.4.1" from the first line of `blender --version` ("Blender 3.4.1"); None when it cannot run."""
    try:
        result = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not run %s --version: %s", program, exc)
        return None
    for line in result.stdout.splitlines():
        match = VERSION.match(line.strip())
        if match:
            return match.group(1)
    log.warning("%s --version printed no version line", program)
    return None


class BlenderRenderer(Renderer):
    software: ClassVar[str] = "blender"
    needs_output: ClassVar[bool] = True
    executable: ClassVar[str] = EXECUTABLE

    def __init__(self, render: dict[str, Any]) -> None:
        super().__init__(render)
        self.frame_count = 1
        self.frame: int | None = None
        self.saved: set[int] = set()
        self.fraction = 0.0

    @classmethod
    def detect_version(cls) -> str | None:
        program = shutil.which(cls.executable)
        return blender_version(program) if program else None

    def commands(self, lease: dict[str, Any], scene_path: str | Path | None, output_dir: Path) -> list[list[str]]:
        if not scene_path:
            raise RenderError("the task has no scene file to render.")
        chunk, output, file_format = self._chunk(lease, scene_path, output_dir)
        render = self.render
        argv = [self.executable, "-b", "--factory-startup", "--disable-autoexec", str(scene_path)]
        naming = None
        if output:  # task.json's Output_path names the frames
            argv += ["-o", output]
        else:  # the scene's own output path does, read inside Blender
            naming = naming_script(Path(output_dir), self._fallback(scene_path))
        if file_format:
            argv += ["-F", file_format]
        argv += ["-x", "1"]  # always add the file extension, whatever the scene says
        argv += ["-s", str(chunk.start), "-e", str(chunk.end), "-j", str(chunk.step)]
        script = settings_script(render.get("camera"), render.get("width"), render.get("height"), naming)
        if script:
            argv += ["--python-exit-code", "1", "--python-expr", script]
        argv.append("-a")
        return [argv]

    # ---- persistent sessions (worker/session.py): the scene loaded once, chunk after chunk ----------------
    def session_argv(self, scene_path: str | Path) -> list[str]:
        return blender_session.session_argv(self.executable, scene_path, blender_format(self.render.get("format")))

    def session_chunk(self, lease: dict[str, Any], scene_path: str | Path, output_dir: Path) -> dict[str, Any]:
        """The command that renders this lease's chunk in a session, as `commands` would in a one-shot run."""
        chunk, output, _ = self._chunk(lease, scene_path, output_dir)
        render = self.render
        return blender_session.chunk_command(chunk.start, chunk.end, chunk.step, output, render.get("camera"),
                                             render.get("width"), render.get("height"),
                                             folder=str(output_dir) + "/", fallback=self._fallback(scene_path))

    def _fallback(self, scene_path: str | Path) -> str:
        """The frames' name when neither task.json nor the scene's output path gives one."""
        return f"{scene_stem(self.render, scene_path)}_####"

    def _chunk(self, lease: dict[str, Any], scene_path: str | Path, output_dir: Path
               ) -> tuple[Chunk, str | None, str | None]:
        """The chunk, the output path pattern (None: the scene's own naming, in ``output_dir``) and Blender's format
        name; progress starts again."""
        chunk = Chunk.of(lease)
        self.frame_count = len(chunk.frames)
        self.frame, self.saved, self.fraction = None, set(), 0.0
        name = self.render.get("output_name")
        output = str(Path(output_dir) / name) if name else None
        return chunk, output, blender_format(self.render.get("format"))

    def parse_progress(self, line: str) -> float | None:
        line = line.strip()
        if SAVED.match(line):
            if self.frame is not None:
                self.saved.add(self.frame)
            else:
                self.saved.add(len(self.saved))
            self.fraction = 0.0
            return self._percent()
        match = FRAME.match(line)
        if not match:
            return None
        frame = int(match.group(1))
        if frame != self.frame:
            self.frame, self.fraction = frame, 0.0
        fraction = self._frame_fraction(line)
        if fraction is not None:
            self.fraction = fraction
        return self._percent()

    @staticmethod
    def _frame_fraction(line: str) -> float | None:
        tiles = RENDERED_TILES.search(line)
        if tiles and int(tiles.group(2)):
            return int(tiles.group(1)) / int(tiles.group(2))
        sample = SAMPLE.search(line) or EEVEE.search(line)
        if not sample or not int(sample.group(2)):
            return None
        fraction = min(int(sample.group(1)) / int(sample.group(2)), 1.0)
        tile = TILE.search(line)
        if tile and int(tile.group(2)):
            fraction = (max(int(tile.group(1)) - 1, 0) + fraction) / int(tile.group(2))
        return fraction

    def _percent(self) -> float:
        current = 0.0 if self.frame in self.saved else self.fraction
        done = min(len(self.saved) + current, self.frame_count)
        return round(done * 100.0 / max(self.frame_count, 1), 2)
