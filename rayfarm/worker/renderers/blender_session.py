"""A persistent Blender session: one `blender -b scene --python-expr LOOP` process renders chunk after chunk.

The session's command line sets the task's output format and file extensions as a one-shot run does (`-F
FORMAT -x 1`, once: a session renders one task). LOOP runs inside Blender. It reads one JSON command per
line on stdin and, for every chunk, first puts back the scene's own values as they were when it started
(camera, resolution, output path, frame range, step and current frame), then sets the chunk's: what
`blender -b scene -o OUT -s S -e E -j J` and the one-shot settings script (camera, resolution) set, in that
order, and renders with `bpy.ops.render.render(animation=True)`, what `-a` runs. So a chunk's frames are
named and written as a one-shot run names and writes them, and no chunk's settings reach the next. When the chunk is over LOOP
flushes C's stdout (Blender's own lines) and prints `<marker> done` or `<marker> failed <JSON sentence>`;
the marker is random per chunk, so nothing the scene prints can end a chunk.
"""

import inspect
import json
import secrets
from pathlib import Path
from typing import Any

from rayfarm.domain.paths import render_file_name

LOOP = r'''
import ctypes, json, sys, traceback
import bpy

{render_file_name}


def rayfarm_session():
    flush = ctypes.CDLL(None).fflush
    scene = bpy.context.scene
    render = scene.render
    own = {"camera": scene.camera, "frame_start": scene.frame_start, "frame_end": scene.frame_end,
           "frame_step": scene.frame_step, "frame_current": scene.frame_current, "filepath": render.filepath,
           "use_file_extension": render.use_file_extension, "resolution_x": render.resolution_x,
           "resolution_y": render.resolution_y, "resolution_percentage": render.resolution_percentage}

    def frames(start, end, step):
        scene.frame_start = start  # may push frame_end up to start: set again below
        scene.frame_end = end
        scene.frame_start = start
        scene.frame_step = step
        return (scene.frame_start, scene.frame_end, scene.frame_step) == (start, end, step)

    def restore():
        scene.camera = own["camera"]
        frames(own["frame_start"], own["frame_end"], own["frame_step"])
        scene.frame_current = own["frame_current"]
        for name in ("filepath", "use_file_extension", "resolution_x", "resolution_y", "resolution_percentage"):
            setattr(render, name, own[name])

    def chunk(command):
        restore()
        # task.json's output path, else the scene's own file name pattern in the chunk's folder
        render.filepath = command["output"] or command["folder"] + (render_file_name(own["filepath"])
                                                                    or command["fallback"])
        render.use_file_extension = True
        start, end, step = command["start"], command["end"], command["step"]
        if not frames(start, end, step):
            raise ValueError(f"Blender cannot render frames {start}-{end} step {step}")
        camera = command["camera"]
        if camera:
            found = bpy.data.objects.get(camera)
            if found is None or found.type != "CAMERA":
                raise LookupError(f"the scene has no camera object named {camera!r}")
            scene.camera = found
        if command["width"]:
            render.resolution_x = command["width"]
        if command["height"]:
            render.resolution_y = command["height"]
        if command["width"] or command["height"]:
            render.resolution_percentage = 100
        bpy.ops.render.render(animation=True)

    for line in sys.stdin:
        command = json.loads(line)
        try:
            chunk(command)
            verdict = "done"
        except Exception as exc:
            traceback.print_exc(file=sys.stdout)
            verdict = "failed " + json.dumps(f"{type(exc).__name__}: {exc}".strip())
        sys.stdout.flush()
        flush(None)
        sys.stdout.write(command["marker"] + " " + verdict + "\n")
        sys.stdout.flush()


rayfarm_session()
'''


def session_argv(executable: str, scene: str | Path, file_format: str | None) -> list[str]:
    """The session's command line: the scene is loaded once, its output format set as a one-shot run sets it (`-F`
    leaves the colour depth and channels as the scene has them: a session renders one task, one format), file
    extensions on (`-x 1`), then LOOP waits for chunks on stdin."""
    argv = [executable, "-b", "--factory-startup", "--disable-autoexec", str(scene)]
    if file_format:
        argv += ["-F", file_format]
    return argv + ["-x", "1", "--python-expr", LOOP.replace("{render_file_name}", inspect.getsource(render_file_name))]


def chunk_command(start: int, end: int, step: int, output: str | None, camera: str | None, width: int | None,
                  height: int | None, folder: str = "", fallback: str = "") -> dict[str, Any]:
    """One chunk for LOOP: every setting a chunk may change, always all of them (None: the scene's own).
    ``output`` None: the frames are named by the scene's own output path, in ``folder`` (``fallback`` when that
    path names a folder only), as a one-shot run names them."""
    return {"marker": f"RAYFARM-CHUNK-{secrets.token_hex(8)}", "start": start, "end": end, "step": step,
            "output": output, "folder": folder, "fallback": fallback, "camera": camera or None,
            "width": int(width) if width else None, "height": int(height) if height else None}


def verdict(line: str, marker: str) -> tuple[str, str, str] | None:
    """(text before the marker, "done" or "failed", the failure's sentence) when `line` ends the chunk, else None."""
    at = line.find(marker)
    if at < 0:
        return None
    before, rest = line[:at], line[at + len(marker):].strip()
    if rest == "done":
        return before, "done", ""
    word, _, message = rest.partition(" ")
    try:
        sentence = str(json.loads(message)) if message else ""
    except ValueError:
        sentence = message
    return before, "failed" if word == "failed" else word, sentence
