"""Parse and validate task.json into a :class:`TaskSpec` (what a farm needs to render it)."""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from rayfarm.domain import frames as fr
from rayfarm.domain.paths import render_file_name, scene_name, to_storage_path
from rayfarm.protocol.codes import ApiError, Code

BLENDER_CG_ID = 2007
COMMAND_CG_ID = 0  # rayfarm's generic command renderer
SOFTWARE = {"blender": BLENDER_CG_ID, "command": COMMAND_CG_ID}
MAX_TASK_JSON_BYTES = 4 * 1024 * 1024
MAX_PER_CHUNK = 10_000
MAX_SECONDS = 30 * 24 * 3600
MAX_COMMAND_ARGS = 256
DEFAULT_STALL_TIMEOUT = 3600  # a render silent for an hour (no line, no file, no progress) is stuck
PLACEHOLDERS = ("{start}", "{end}", "{step}", "{frame}", "{scene}", "{output}")
MAX_HARDWARE_IDS = 100
# str() of a Blender camera object, as analysers write camera_name: Blender 2.x `<bpy_struct, Object("Camera")>`,
# 3.x and later with ` at 0x<address>` before the `>`
BPY_OBJECT = re.compile(r'^<bpy_struct, Object\("(.*)"\)(?: at 0x[0-9A-Fa-f]+)?>$', re.DOTALL)
NO_CAMERA = ("", "none")


@dataclass
class TaskSpec:
    software: str  # "blender" or "command"
    cg_id: int
    cg_version: str
    scene_path: str  # the user's local path, as written in task.json
    scene_storage_path: str  # mapped: "/D/proj/a.blend"
    scene_name: str
    frames_text: str
    runs: list[fr.Run]
    per_chunk: int
    priority: list[int]
    pause_after_test: bool
    job_stop_time: int  # per-chunk timeout, seconds (0 = none)
    task_stop_time: int  # over-time stop, seconds (0 = none)
    time_out: int  # reminder only
    project_name: str
    camera: str | None = None
    width: int | None = None
    height: int | None = None
    output_format: str | None = None
    output_name: str | None = None  # the file name pattern of Output_path; None: the scene's own (Blender)
    command: list[str] | None = None
    max_attempts: int = 3
    hardware_config_ids: list[int] = field(default_factory=list)  # [] = any node (hardwareConfig/list "Default")
    stall_timeout: int = DEFAULT_STALL_TIMEOUT  # seconds without output, new files or progress: killed as stuck
    persistent_session: bool = True  # nodes may run chunk after chunk in one session (Blender process, command sandbox)
    plugins: dict = field(default_factory=dict)

    @property
    def total_frames(self) -> int:
        return fr.frame_count(self.runs)


def _invalid(message: str) -> ApiError:
    return ApiError(Code.INVALID_PARAMETER, f"task.json: {message}")


def load(content: str | bytes | None) -> dict:
    """Decode task.json text: 741 when empty, 740 when it is not a JSON object."""
    if content is None or (isinstance(content, (str, bytes)) and not content.strip()):
        raise ApiError(Code.TASK_JSON_EMPTY,
                       "task.json is empty or was never uploaded; upload it with taskJsonFile before submitting.")
    if not isinstance(content, (str, bytes)):
        raise ApiError(Code.TASK_JSON_UNREADABLE,
                       "task.json cannot be read: upload the file's JSON text as a string.")
    if isinstance(content, str):
        content = content.lstrip("\ufeff")  # a byte-order mark written by some Windows editors
    if len(content) > MAX_TASK_JSON_BYTES:
        raise ApiError(Code.TASK_JSON_UNREADABLE,
                       f"task.json is larger than {MAX_TASK_JSON_BYTES // (1024 * 1024)} MiB; remove unneeded content.")
    try:
        data = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise ApiError(Code.TASK_JSON_UNREADABLE,
                       f"task.json cannot be read: it is not valid JSON ({str(exc)[:120]}). "
                       f"Fix the file and upload it again.") from None
    if not isinstance(data, dict):
        raise ApiError(Code.TASK_JSON_UNREADABLE,
                       "task.json cannot be read: it must be a JSON object at the top level.")
    if not data:
        raise ApiError(Code.TASK_JSON_EMPTY, "task.json is an empty object; fill in task_info and software_config.")
    return data


def _section(data: dict, name: str, required: bool = True) -> dict:
    value = data.get(name)
    if value is None:
        if required:
            raise _invalid(f"the section {name!r} is missing.")
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"the section {name!r} must be an object.")
    return value


def _text(section: dict, key: str, where: str, default: str | None = None) -> str | None:
    value = section.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _invalid(f"{where}.{key} must be a string.")
    return str(value).strip()


def _int(section: dict, key: str, where: str, default: int, low: int, high: int) -> int:
    value = section.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        raise _invalid(f"{where}.{key} must be a whole number written as a string, e.g. \"{default}\".")
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if not re.fullmatch(r"-?[0-9]{1,12}", text):
        raise _invalid(f"{where}.{key} must be a whole number written as a string, e.g. \"{default}\"; "
                       f"got {str(value)[:40]!r}.")
    number = int(text)
    if not low <= number <= high:
        raise _invalid(f"{where}.{key} must be between {low} and {high}; got {number}.")
    return number


def _software(data: dict, task_info: dict) -> tuple[str, int, str, dict]:
    config = _section(data, "software_config")
    name = (_text(config, "cg_name", "software_config") or "").lower()
    version = _text(config, "cg_version", "software_config") or ""
    plugins = config.get("plugins") or {}
    if not isinstance(plugins, dict):
        raise _invalid("software_config.plugins must be an object.")
    cg_id_text = _text(task_info, "cg_id", "task_info")
    if not name and cg_id_text:
        name = {str(v): k for k, v in SOFTWARE.items() if v}.get(cg_id_text, "")
    if name not in SOFTWARE:
        raise _invalid(f"the software {name or cg_id_text or '(none)'!r} is not supported by this farm; "
                       f"set software_config.cg_name to \"Blender\" or \"command\".")
    if cg_id_text and name == "blender" and cg_id_text != str(BLENDER_CG_ID):
        raise _invalid(f"task_info.cg_id {cg_id_text!r} does not match cg_name Blender (2007).")
    return name, SOFTWARE[name], version, plugins


def _scene_common(data: dict) -> dict:
    for name in ("scene_info_render", "scene_info"):
        section = data.get(name)
        if isinstance(section, dict) and isinstance(section.get("common"), dict) and section["common"]:
            return section["common"]
    return {}


def _command(data: dict) -> list[str]:
    extra = _section(data, "additional_info", required=False)
    command = extra.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(arg, str) for arg in command):
        raise _invalid("additional_info.command must be a non-empty list of strings (the program and its "
                       "arguments), e.g. [\"povray\", \"+I{scene}\", \"+O{output}/f_{frame}.png\"].")
    if len(command) > MAX_COMMAND_ARGS or any(len(arg) > 4096 or "\x00" in arg for arg in command):
        raise _invalid(f"additional_info.command is too long or contains a NUL byte "
                       f"(at most {MAX_COMMAND_ARGS} arguments of 4096 characters).")
    return command


def camera_name(value: str | None) -> str | None:
    """The camera object's name from task.json's ``camera_name``; None = the scene's own camera.

    Accepts what analysers write (``<bpy_struct, Object("Camera")>``, with `` at 0x...`` from Blender 3 on),
    a bare name, and ``"None"`` or ``""`` for no camera."""
    text = (value or "").strip()
    if text.lower() in NO_CAMERA:
        return None
    if text.startswith("<bpy_struct"):
        found = BPY_OBJECT.match(text)
        if not found or not found.group(1).strip():
            raise _invalid(f"scene_info.common.camera_name {ascii(text[:80])} names no camera object; write the camera's "
                           f"name, e.g. \"Camera\", or <bpy_struct, Object(\"Camera\")>.")
        text = found.group(1)
    if len(text) > 255 or any(ord(c) < 32 for c in text):
        raise _invalid("scene_info.common.camera_name is not a camera name (too long, or control characters).")
    return text


def hardware_config_ids(task_info: dict) -> list[int]:
    """task_info ``hardwareConfigIds`` (a list of id strings, as RayvisionCheck writes it) or the older string
    ``hardwareConfigId``; [] when both are missing or empty (the default: any node)."""
    ids = task_info.get("hardwareConfigIds")
    if ids in (None, "", []):
        single = task_info.get("hardwareConfigId")
        ids = [] if single in (None, "") else [single]
    if not isinstance(ids, list):
        raise _invalid("task_info.hardwareConfigIds must be a list of hardware config ids, e.g. [\"2\"].")
    if len(ids) > MAX_HARDWARE_IDS:
        raise _invalid(f"task_info.hardwareConfigIds lists more than {MAX_HARDWARE_IDS} ids.")
    result: list[int] = []
    for value in ids:
        text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if not re.fullmatch(r"[0-9]{1,10}", text) or not 1 <= int(text) <= 2**31 - 1:
            raise _invalid(f"task_info.hardwareConfigIds holds {ascii(str(value)[:40])}, which is not a hardware config "
                           f"id; list them with hardwareConfig/list.")
        if int(text) not in result:
            result.append(int(text))
    return result


def parse(content: str | bytes | None) -> TaskSpec:
    data = load(content)
    task_info = _section(data, "task_info")
    software, cg_id, version, plugins = _software(data, task_info)
    common = _scene_common(data)
    where = "scene_info.common"

    frames_text = _text(common, "frames", where)
    if not frames_text:
        raise _invalid(f"{where}.frames is missing; give the frame range like \"1-250[1]\".")
    runs = fr.parse_range(frames_text)
    per_chunk = _int(task_info, "frames_per_task", "task_info", 1, 1, MAX_PER_CHUNK)
    pre = fr.parse_pre_frames(_text(task_info, "pre_frames", "task_info", "000"))
    priority = fr.priority_frames(runs, pre)
    stop_after_test = _text(task_info, "stop_after_test", "task_info", "2") or "2"
    if stop_after_test not in ("1", "2"):
        raise _invalid("task_info.stop_after_test must be \"1\" (pause after the priority frames) or \"2\" (go on).")

    persistent = _text(task_info, "persistent_session", "task_info", "1") or "1"
    if persistent not in ("0", "1"):
        raise _invalid("task_info.persistent_session must be \"1\" (nodes may run chunk after chunk in one Blender "
                       "process, the scene loaded once, or one sandbox for a command) or \"0\" (Blender, or the "
                       "command's sandbox, starts again for every chunk).")

    scene_path = _text(task_info, "input_cg_file", "task_info") or ""
    command = None
    if software == "command":
        command = _command(data)
        if any("{scene}" in arg for arg in command) and not scene_path:
            raise _invalid("the command uses {scene} but task_info.input_cg_file is empty.")
    elif not scene_path:
        raise _invalid("task_info.input_cg_file is missing; give the scene file's full local path.")
    storage_path = to_storage_path(scene_path) if scene_path else ""

    width = _int(common, "width", where, 0, 0, 65536) or None
    height = _int(common, "height", where, 0, 0, 65536) or None
    output_format = _text(common, "Render_Format", where) or None
    output_name = render_file_name(_text(common, "Output_path", where) or "") or None
    if output_format and not output_format.replace("_", "").isalnum():
        raise _invalid(f"{where}.Render_Format {output_format[:30]!r} is not a format name like \"PNG\".")

    return TaskSpec(
        software=software,
        cg_id=cg_id,
        cg_version=version,
        scene_path=scene_path,
        scene_storage_path=storage_path,
        scene_name=scene_name(scene_path) if scene_path else "command",
        frames_text=frames_text,
        runs=runs,
        per_chunk=per_chunk,
        priority=priority,
        pause_after_test=stop_after_test == "1" and bool(priority),
        job_stop_time=_int(task_info, "job_stop_time", "task_info", 259200, 0, MAX_SECONDS),
        task_stop_time=_int(task_info, "task_stop_time", "task_info", 0, 0, MAX_SECONDS),
        time_out=_int(task_info, "time_out", "task_info", 43200, 0, MAX_SECONDS),
        project_name=(_text(task_info, "project_name", "task_info") or "")[:255],
        camera=camera_name(_text(common, "camera_name", where)),
        width=width,
        height=height,
        output_format=output_format,
        output_name=output_name,
        command=command,
        max_attempts=_int(task_info, "max_attempts", "task_info", 3, 1, 100),
        stall_timeout=_int(task_info, "stall_timeout", "task_info", DEFAULT_STALL_TIMEOUT, 0, MAX_SECONDS),
        persistent_session=persistent == "1",
        plugins=plugins,
        hardware_config_ids=hardware_config_ids(task_info),
    )


def describe(spec: TaskSpec) -> dict[str, Any]:
    """What the farm stores about how to render a task (the renderer's input)."""
    return {
        "software": spec.software,
        "cg_version": spec.cg_version,
        "scene": spec.scene_storage_path,
        "camera": spec.camera,
        "width": spec.width,
        "height": spec.height,
        "format": spec.output_format,
        "output_name": spec.output_name,
        "command": spec.command,
        "stall_timeout": spec.stall_timeout,
        "persistent_session": spec.persistent_session,
    }
