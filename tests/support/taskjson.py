"""The one task.json factory of the tests and the benchmarks: Blender tasks and command tasks.

Both are written as the official SDK's analysis writes them (every value a string); keyword arguments
override or add ``task_info`` keys (``max_attempts="1"``, ``stall_timeout="2"``, ``pre_frames="100"``...).
The SDK takes the dict as it is; a raw request or the store wants :func:`text`.
"""

import json
from collections.abc import Mapping, Sequence

SCENE = "D:/proj/shots/shot010.blend"  # where the Blender tasks' scene is, unless told otherwise
# what `blender` puts in scene_info.common besides the frames; `common=` changes or adds keys
COMMON = {"width": "640", "height": "360", "Render_Format": "PNG", "Output_path": "D:/proj/render/",
          "camera_name": "Camera", "scene_name": "Scene"}


def _task_info(per_chunk: int, task_info: Mapping[str, str]) -> dict:
    return {"task_id": "", "user_id": "", "project_name": "tests", "input_cg_file": "", "input_project_path": "",
            "frames_per_task": str(per_chunk), "pre_frames": "000", "stop_after_test": "2",
            "job_stop_time": "259200", "task_stop_time": "0", "time_out": "43200", "ram": "64", "os_name": "1",
            **task_info}


def blender(scene: str = SCENE, frames: str = "1-10[1]", *, per_chunk: int = 1, cg_version: str = "4.2",
            common: Mapping[str, str] | None = None, **task_info: str) -> dict:
    """A Blender task of the scene at ``scene`` (a local path, as the user's machine names it)."""
    info = _task_info(per_chunk, {"cg_id": "2007", "input_cg_file": scene, **task_info})
    return {"software_config": {"cg_name": "Blender", "cg_version": cg_version, "plugins": {}},
            "task_info": info,
            "scene_info": {"common": {"frames": frames, **COMMON, **(common or {})}}}


def command(command: Sequence[str] = ("true", "{frame}"), frames: str = "1-4[1]", *, per_chunk: int = 1,
            **task_info: str) -> dict:
    """A command task: the node runs ``command`` once per frame, with {frame}, {output}, {scene} filled in."""
    return {"software_config": {"cg_name": "command", "cg_version": "", "plugins": {}},
            "task_info": _task_info(per_chunk, task_info),
            "scene_info": {"common": {"frames": frames}},
            "additional_info": {"command": list(command)}}


def text(data: dict) -> str:
    return json.dumps(data)


def store_text(frames: str = "1-4", per_chunk: int = 1, **task_info: str) -> str:
    """A command task's text, as the store-level tests put it into the database."""
    return text(command(frames=frames, per_chunk=per_chunk, **task_info))
