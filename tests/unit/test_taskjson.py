"""task.json parsing and validation (spec section 6)."""

import copy
import json

import pytest

from rayfarm.domain import taskjson
from rayfarm.domain.frames import Run
from rayfarm.protocol.codes import ApiError

BLENDER = {
    "software_config": {"cg_name": "Blender", "cg_version": "3.6", "plugins": {}},
    "task_info": {
        "task_id": "1001",
        "user_id": "7",
        "project_name": "Film",
        "cg_id": "2007",
        "input_cg_file": "D:/proj/a.blend",
        "input_project_path": "D:/proj",
        "frames_per_task": "2",
        "pre_frames": "100",
        "stop_after_test": "1",
        "job_stop_time": "3600",
        "task_stop_time": "7200",
        "time_out": "600",
        "ram": "64",
        "os_name": "1",
    },
    "scene_info_render": {
        "common": {
            "frames": "1-6[1]",
            "width": "1920",
            "height": "1080",
            "Render_Format": "PNG",
            "Output_path": "D:/proj/out",
            "camera_name": "Camera",
            "scene_name": "Scene",
        },
    },
    "additional_info": {},
}

COMMAND = {
    "software_config": {"cg_name": "command", "cg_version": "", "plugins": {}},
    "task_info": {"input_cg_file": "/home/me/scene.pov", "frames_per_task": "1"},
    "scene_info": {"common": {"frames": "1-3"}},
    "additional_info": {"command": ["povray", "+I{scene}", "+O{output}/f_{frame}.png", "+SF{start}", "+EF{end}"]},
}


def task(base: dict = BLENDER, **changes) -> str:
    """``base`` as JSON text, with ``section__key=value`` changes (value None deletes the key)."""
    data = copy.deepcopy(base)
    for name, value in changes.items():
        path = name.split("__")
        target = data
        for part in path[:-1]:
            target = target.setdefault(part, {})
        if value is None:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return json.dumps(data)


def error(content) -> ApiError:
    with pytest.raises(ApiError) as info:
        taskjson.parse(content)
    return info.value


# ---------------------------------------------------------------- valid files

def test_parse_blender_task():
    spec = taskjson.parse(task())
    assert spec.software == "blender"
    assert spec.cg_id == 2007
    assert spec.cg_version == "3.6"
    assert spec.scene_path == "D:/proj/a.blend"
    assert spec.scene_storage_path == "/D/proj/a.blend"
    assert spec.scene_name == "a.blend"
    assert spec.frames_text == "1-6[1]"
    assert spec.runs == [Run(1, 6, 1)]
    assert spec.total_frames == 6
    assert spec.per_chunk == 2
    assert spec.priority == [1]
    assert spec.pause_after_test is True
    assert spec.job_stop_time == 3600
    assert spec.task_stop_time == 7200
    assert spec.time_out == 600
    assert spec.project_name == "Film"
    assert spec.camera == "Camera"
    assert (spec.width, spec.height, spec.output_format) == (1920, 1080, "PNG")
    assert spec.command is None
    assert spec.max_attempts == 3
    assert spec.plugins == {}


def test_parse_accepts_bytes_and_a_bom():
    assert taskjson.parse(task().encode("utf-8")).total_frames == 6
    assert taskjson.parse("\ufeff" + task()).total_frames == 6
    assert taskjson.parse(b"\xef\xbb\xbf" + task().encode()).total_frames == 6


def test_defaults():
    content = json.dumps({
        "software_config": {"cg_name": "Blender"},
        "task_info": {"input_cg_file": "C:\\work\\shot 1.blend"},
        "scene_info": {"common": {"frames": "1-250[1]"}},
    })
    spec = taskjson.parse(content)
    assert spec.per_chunk == 1
    assert spec.priority == []
    assert spec.pause_after_test is False
    assert spec.job_stop_time == 259200
    assert spec.task_stop_time == 0
    assert spec.time_out == 43200
    assert spec.scene_storage_path == "/C/work/shot 1.blend"
    assert spec.scene_name == "shot 1.blend"
    assert spec.width is None and spec.height is None and spec.output_format is None and spec.camera is None
    assert spec.project_name == ""
    assert spec.cg_version == ""


def test_scene_info_instead_of_scene_info_render():
    content = task(scene_info_render=None, scene_info={"common": {"frames": "3-7", "width": "640"}})
    spec = taskjson.parse(content)
    assert spec.runs == [Run(3, 7, 1)]
    assert spec.width == 640
    assert spec.height is None


def test_scene_info_render_wins_over_scene_info():
    spec = taskjson.parse(task(scene_info={"common": {"frames": "100-200"}}))
    assert spec.frames_text == "1-6[1]"


def test_empty_scene_info_render_falls_back_to_scene_info():
    spec = taskjson.parse(task(scene_info_render={"common": {}}, scene_info={"common": {"frames": "2-3"}}))
    assert spec.runs == [Run(2, 3, 1)]


def test_software_from_cg_id_only():
    spec = taskjson.parse(task(software_config={"cg_version": "4.1"}))
    assert spec.software == "blender" and spec.cg_version == "4.1"


def test_cg_name_is_case_insensitive():
    assert taskjson.parse(task(software_config__cg_name="BLENDER")).software == "blender"


def test_numbers_instead_of_strings_are_accepted():
    spec = taskjson.parse(task(task_info__frames_per_task=3, task_info__stop_after_test=2, task_info__pre_frames="000",
                               scene_info_render__common__width=800))
    assert spec.per_chunk == 3
    assert spec.width == 800
    assert spec.pause_after_test is False


def test_command_software():
    spec = taskjson.parse(task(COMMAND))
    assert spec.software == "command"
    assert spec.cg_id == 0
    assert spec.command == COMMAND["additional_info"]["command"]
    assert spec.scene_storage_path == "/home/me/scene.pov"
    assert spec.scene_name == "scene.pov"
    assert spec.runs == [Run(1, 3, 1)]
    assert taskjson.describe(spec)["command"] == spec.command


def test_command_without_scene():
    spec = taskjson.parse(task(COMMAND, task_info__input_cg_file=None,
                               additional_info__command=["render", "{start}", "{end}", "{output}"]))
    assert spec.scene_path == "" and spec.scene_storage_path == ""
    assert spec.scene_name == "command"


def test_describe():
    described = taskjson.describe(taskjson.parse(task()))
    assert described == {"software": "blender", "cg_version": "3.6", "scene": "/D/proj/a.blend", "camera": "Camera",
                         "width": 1920, "height": 1080, "format": "PNG", "output_name": "out", "command": None,
                         "stall_timeout": 3600, "persistent_session": True}


@pytest.mark.parametrize("value, persistent", [(None, True), ("", True), ("1", True), ("0", False), (0, False),
                                               (1, True)])
def test_persistent_session_reaches_the_render_dict(value, persistent):
    spec = taskjson.parse(task(task_info__persistent_session=value))
    assert spec.persistent_session is persistent
    assert taskjson.describe(spec)["persistent_session"] is persistent


@pytest.mark.parametrize("value", ["yes", "2", "false"])
def test_persistent_session_must_be_0_or_1(value):
    with pytest.raises(ApiError, match="persistent_session must be"):
        taskjson.parse(task(task_info__persistent_session=value))


@pytest.mark.parametrize(("output_path", "name"), [
    ("D:/proj/renders/frame_", "frame_"),  # Blender names frame 1 frame_0001.png
    ("D:\\proj\\renders\\beauty_###", "beauty_###"),
    ("//renders/shot.####", "shot.####"),
    ("/tmp\\", None),  # what Renderbus' analysis writes for Blender's default: a folder, no name
    ("D:/proj/renders/", None),
    ("", None),
    (None, None),  # absent: the node reads the scene's own output path
])
def test_output_path_gives_the_frames_file_name(output_path, name):
    spec = taskjson.parse(task(scene_info_render__common__Output_path=output_path))
    assert spec.output_name == name and taskjson.describe(spec)["output_name"] == name


# ---------------------------------------------------------------- pause_after_test

@pytest.mark.parametrize("pre_frames, stop_after_test, priority, pause", [
    ("100", "1", [1], True),
    ("000:3", "1", [3], True),
    ("111", "1", [1, 3, 6], True),
    ("100", "2", [1], False),
    ("000", "1", [], False),
    (None, "1", [], False),
    ("000", "2", [], False),
    ("100", None, [1], False),  # stop_after_test defaults to "2"
])
def test_pause_after_test(pre_frames, stop_after_test, priority, pause):
    spec = taskjson.parse(task(task_info__pre_frames=pre_frames, task_info__stop_after_test=stop_after_test))
    assert spec.priority == priority
    assert spec.pause_after_test is pause


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("content", [None, "", "   \n", b"", b"  ", "{}", " {} "])
def test_empty_is_741(content):
    err = error(content)
    assert err.code == 741
    assert "task.json" in err.message


@pytest.mark.parametrize("content", ["not json", "{", "[1, 2]", "[]", '"text"', "123", "null", "true",
                                     "{'single': 'quotes'}", b"\xff\xfe{", "[" * 100_000 + "]" * 100_000, 12, 1.5,
                                     ["a"], {"task_info": {}}])
def test_unreadable_is_740(content):
    err = error(content)
    assert err.code == 740
    assert "task.json" in err.message


def test_too_large_is_740():
    err = error('{"x": "' + "a" * taskjson.MAX_TASK_JSON_BYTES + '"}')
    assert err.code == 740
    assert "MiB" in err.message


@pytest.mark.parametrize("changes, fragment", [
    ({"task_info": None}, "'task_info' is missing"),
    ({"software_config": None}, "'software_config' is missing"),
    ({"task_info": ["x"]}, "'task_info' must be an object"),
    ({"software_config": "Blender"}, "'software_config' must be an object"),
    ({"software_config__cg_name": "Maya"}, "'maya' is not supported"),
    ({"software_config__cg_name": "3ds Max", "task_info__cg_id": "2001"}, "'3ds max' is not supported"),
    ({"software_config": {}, "task_info__cg_id": "2000"}, "'2000' is not supported"),
    ({"software_config": {}, "task_info__cg_id": None}, "'(none)' is not supported"),
    ({"software_config__cg_name": ["Blender"]}, "software_config.cg_name must be a string"),
    ({"software_config__cg_name": True}, "software_config.cg_name must be a string"),
    ({"software_config__plugins": ["x"]}, "software_config.plugins must be an object"),
    ({"task_info__cg_id": "2000"}, "does not match cg_name Blender"),
    ({"scene_info_render": None}, "frames is missing"),
    ({"scene_info_render__common__frames": None}, "frames is missing"),
    ({"scene_info_render__common__frames": ""}, "frames is missing"),
    ({"scene_info_render__common__frames": "1-x"}, "Invalid frame range '1-x'"),
    ({"scene_info_render__common__frames": "6-1"}, "ends before it starts"),
    ({"scene_info_render__common__frames": ["1-5"]}, "scene_info.common.frames must be a string"),
    ({"task_info__frames_per_task": "0"}, "frames_per_task must be between 1 and"),
    ({"task_info__frames_per_task": "-2"}, "frames_per_task must be between 1 and"),
    ({"task_info__frames_per_task": "abc"}, "frames_per_task must be a whole number"),
    ({"task_info__frames_per_task": "2.5"}, "frames_per_task must be a whole number"),
    ({"task_info__frames_per_task": True}, "frames_per_task must be a whole number"),
    ({"task_info__frames_per_task": "999999999"}, "frames_per_task must be between 1 and"),
    ({"task_info__stop_after_test": "3"}, "stop_after_test must be \"1\""),
    ({"task_info__stop_after_test": "yes"}, "stop_after_test must be \"1\""),
    ({"task_info__input_cg_file": None}, "input_cg_file is missing"),
    ({"task_info__input_cg_file": "  "}, "input_cg_file is missing"),
    ({"task_info__input_cg_file": "a.blend"}, "not absolute"),
    ({"task_info__input_cg_file": "D:/proj/../../etc/passwd"}, "'..'"),
    ({"task_info__job_stop_time": "-1"}, "job_stop_time must be between 0 and"),
    ({"task_info__task_stop_time": "forever"}, "task_stop_time must be a whole number"),
    ({"task_info__max_attempts": "0"}, "max_attempts must be between 1 and 100"),
    ({"scene_info_render__common__width": "wide"}, "width must be a whole number"),
    ({"scene_info_render__common__height": "70000"}, "height must be between 0 and 65536"),
    ({"scene_info_render__common__Render_Format": "PNG; rm -rf /"}, "is not a format name"),
])
def test_invalid_is_600(changes, fragment):
    err = error(task(**changes))
    assert err.code == 600, err
    assert fragment in err.message
    assert err.message.endswith(".")


def test_unknown_software_message_says_what_is_supported():
    err = error(task(software_config__cg_name="Maya"))
    assert err.code == 600
    assert '"Blender"' in err.message and '"command"' in err.message


@pytest.mark.parametrize("changes, code", [
    ({"task_info__pre_frames": "abc"}, 750),
    ({"task_info__pre_frames": "10"}, 750),
    ({"task_info__pre_frames": "000:7"}, 750),  # outside 1-6
    ({"task_info__pre_frames": "000:x"}, 750),
    ({"scene_info_render__common__frames": "1-5000000"}, 511),
])
def test_frame_errors_keep_their_codes(changes, code):
    assert error(task(**changes)).code == code


@pytest.mark.parametrize("command, fragment", [
    ("povray +I{scene}", "additional_info.command must be a non-empty list of strings"),
    ([], "additional_info.command must be a non-empty list of strings"),
    (["povray", 3], "additional_info.command must be a non-empty list of strings"),
    ({"argv": ["x"]}, "additional_info.command must be a non-empty list of strings"),
    (None, "additional_info.command must be a non-empty list of strings"),
    (["x"] * 1000, "too long"),
    (["x" * 5000], "too long"),
    (["a\x00b"], "too long"),
])
def test_command_errors(command, fragment):
    err = error(task(COMMAND, additional_info__command=command))
    assert err.code == 600
    assert fragment in err.message


def test_command_additional_info_missing_or_wrong():
    assert "additional_info.command" in error(task(COMMAND, additional_info=None)).message
    assert "'additional_info' must be an object" in error(task(COMMAND, additional_info=["x"])).message


def test_command_uses_scene_without_scene():
    err = error(task(COMMAND, task_info__input_cg_file=None))
    assert err.code == 600
    assert "uses {scene} but task_info.input_cg_file is empty" in err.message


def test_all_messages_start_with_task_json():
    err = error(task(task_info__frames_per_task="abc"))
    assert err.message.startswith("task.json: ")


# ------------------------------------------------------------------ camera_name (spec renderbus-workflow.md section 5)

@pytest.mark.parametrize("value, camera", [
    ('<bpy_struct, Object("Camera")>', "Camera"),  # Blender 2.x, the docs' sample
    ('<bpy_struct, Object("Camera") at 0x7f3a2c1d0e08>', "Camera"),  # Blender 3.x and later
    ('<bpy_struct, Object("Cam.001") at 0x00000214A3B2C6C8>', "Cam.001"),
    ('<bpy_struct, Object("Shot "A" cam")>', 'Shot "A" cam'),  # quotes in a name are not escaped by Blender
    ("  Camera  ", "Camera"),  # a bare name
    ("SideCamera", "SideCamera"),
    ("None", None),  # str(None): the analyser found no camera, render through the scene's
    ("none", None),
    ("", None),
    (None, None),
])
def test_camera_name_forms(value, camera):
    assert taskjson.parse(task(scene_info_render__common__camera_name=value)).camera == camera


@pytest.mark.parametrize("value", ['<bpy_struct, Object("")>', "<bpy_struct, Camera(\"Camera\")>",
                                   '<bpy_struct, Object("Camera") at nowhere>', "<bpy_struct, Object(Camera)>",
                                   "Cam\nera", "x" * 300])
def test_camera_values_that_name_no_camera_are_600(value):
    with pytest.raises(ApiError) as info:
        taskjson.parse(task(scene_info_render__common__camera_name=value))
    assert info.value.code == 600 and "camera_name" in info.value.message and info.value.message.isascii()


def test_camera_reaches_the_renderer_as_a_plain_name():
    spec = taskjson.parse(task(scene_info_render__common__camera_name='<bpy_struct, Object("Camera") at 0x1>'))
    assert taskjson.describe(spec)["camera"] == "Camera"


# ------------------------------------------------------------------ hardware configs (node pools)

@pytest.mark.parametrize("info, ids", [
    ({}, []),  # the docs' sample has none: any node
    ({"hardwareConfigIds": [], "hardwareConfigId": ""}, []),  # RayvisionCheck with a dict task_json ends so
    ({"hardwareConfigIds": ["3", "1"], "hardwareConfigId": ""}, [3, 1]),  # 3.0.4.3: a list of id strings
    ({"hardwareConfigIds": [3, "3"]}, [3]),
    ({"hardwareConfigId": "5"}, [5]),  # older files and the docs: one string
    ({"hardwareConfigId": 5}, [5]),
    ({"hardwareConfigIds": [], "hardwareConfigId": "7"}, [7]),
    ({"hardwareConfigIds": ["2"], "hardwareConfigId": "7"}, [2]),  # the list wins
])
def test_hardware_config_ids(info, ids):
    changes = {f"task_info__{key}": value for key, value in info.items()}
    assert taskjson.parse(task(**changes)).hardware_config_ids == ids


@pytest.mark.parametrize("value", [["gpu"], ["0"], ["-1"], [True], [None], [["1"]], "1,2", {"id": 1},
                                   [str(2**31)], ["1"] * 101])
def test_hardware_config_ids_that_are_not_ids_are_600(value):
    with pytest.raises(ApiError) as info:
        taskjson.parse(task(task_info__hardwareConfigIds=value))
    assert info.value.code == 600 and "hardwareConfigIds" in info.value.message
