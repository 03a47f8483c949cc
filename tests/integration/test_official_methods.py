"""Every public method of every rayvision_api operator against a real server: no path answers "There is no API
at", and every answer has the shape the SDK's schemas and callers read.

``official_methods_flow.py`` enumerates the operators' methods and properties itself (``inspect``) and calls each
once, in the official client's own virtual environment; a method without arguments in its table fails here.
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.support import taskjson
from tests.support.fake_node import Node
from tests.support.farms import running_farm
from tests.support.signed import Raw, check_envelope

SCRIPT = Path(__file__).with_name("official_methods_flow.py")
NO_API = "There is no API at"
OPERATORS = {"UserOperator", "TaskOperator", "QueryOperator", "TagOperator", "RenderEnvOperator", "TransmitOperator"}

COMMAND_TASK = {"software_config": {"cg_name": "command"},
                "task_info": {"frames_per_task": "1", "pre_frames": "000", "stop_after_test": "2"},
                "scene_info_render": {"common": {"frames": "1-2[1]"}},
                "additional_info": {"command": [sys.executable, "-c", "pass"]}}


def paged(data, item_keys=()):
    assert {"pageCount", "pageNum", "total", "size", "items"} <= set(data), data
    assert all(set(item_keys) <= set(item) for item in data["items"]), data["items"][:2]
    return data["items"]


def has(*keys):
    def check(data):
        assert isinstance(data, dict) and set(keys) <= set(data), data
    return check


def items_with(*keys):
    def check(data):
        assert isinstance(data, list) and data and all(set(keys) <= set(item) for item in data), data
    return check


def is_none(data):
    assert data is None, data


def task_items(data):
    [item] = paged(data, ("id", "taskStatus", "statusText", "isOpen", "outputFileName", "userId", "bid",
                          "respRenderingTaskList"))
    assert item["isOpen"] == 0 and item["respRenderingTaskList"] == [] and item["bid"] == "20201", item
    assert item["taskStatus"] in (0, 5, 8, 10, 20, 23, 25, 30, 35, 40, 45), item


def process_image(data):
    has("width", "height", "block", "sceneName", "grabInfo")(data)
    [[grab]] = data["grabInfo"]
    assert {"frameIndex", "frameStatus", "framePercent", "grabUrl"} <= set(grab), grab


def software_detail(data):
    has("cgPlugin", "cgVersion")(data)
    assert all(isinstance(v["cgVersion"], str) and v["id"] for v in data["cgVersion"]) and data["cgVersion"], data


def render_log(data):
    lines = paged(data)
    assert lines and all(isinstance(line, str) for line in lines), data


def transfer_config(data):
    has("resqEngines")(data)
    assert isinstance(data["resqEngines"], list), data


SHAPES = {
    "UserOperator.info": has("user_id", "user_name", "config_bid", "input_bid", "output_bid", "domain", "local_os"),
    "UserOperator.user_id": lambda data: isinstance(data, int) or pytest.fail(repr(data)),
    "UserOperator.query_user_profile": has("userId", "userName", "platform", "email", "accountType"),
    "UserOperator.query_user_setting": has("taskOverTime", "singleNodeRenderFrames"),
    "UserOperator.get_transfer_bid": has("config_bid", "input_bid", "output_bid"),
    "UserOperator.get_hardware_config": items_with("id", "status", "platform", "model", "ram", "gpuNum",
                                                   "notSupportCgId", "notSupportCode", "notSupportCgVersions",
                                                   "notSupportPluginList"),
    "UserOperator.update_user_settings": is_none,
    "UserOperator.task_record": lambda data: paged(data),
    "UserOperator.login_record": lambda data: paged(data),
    "TagOperator.add_label": is_none,
    "TagOperator.get_label_list": has("projectNameList"),
    "TagOperator.get_project_list": items_with("projectId", "projectName"),
    "TagOperator.get_list": has("projectNameList"),
    "TagOperator.delete_label": is_none,
    "TagOperator.add_task_tag": is_none,
    "TagOperator.delete_task_tag": is_none,
    "TaskOperator.create_task": has("taskIdList", "aliasTaskIdList", "userId"),
    "TransmitOperator.upload_json_content": is_none,
    "TaskOperator.submit_task": has("taskId"),
    "TaskOperator.task_id": lambda data: isinstance(data, int) or pytest.fail(repr(data)),
    "TaskOperator.update_priority": is_none,
    "TaskOperator.set_task_overtime_top": lambda data: data == "SUCCESS" or pytest.fail(repr(data)),
    "TaskOperator.update_task_limit": is_none,
    "TaskOperator.full_speed": lambda data: data == "success" or pytest.fail(repr(data)),
    "TaskOperator.edit_task_hardware_config": is_none,
    "TaskOperator.stop_task": is_none,
    "TaskOperator.start_task": is_none,
    "TaskOperator.abort_task": is_none,
    "TaskOperator.delete_task": is_none,
    "QueryOperator.platforms": items_with("platform", "name"),
    "QueryOperator.error_detail": lambda data: isinstance(data, list) or pytest.fail(repr(data)),
    "QueryOperator.get_task_list": lambda data: paged(data, ("id", "taskStatus", "isOpen", "respRenderingTaskList")),
    "QueryOperator.task_info": task_items,
    "QueryOperator.task_frames": lambda data: paged(data, ("id", "frameIndex", "frameStatus")),
    "QueryOperator.all_frame_status": has("executingFramesTotal", "doneFramesTotal", "failedFramesTotal",
                                          "waitingFramesTotal", "totalFrames"),
    "QueryOperator.get_all_frames": lambda data: set(data) == {"1", "2"} or pytest.fail(repr(data)),
    "QueryOperator.get_small_task_id": lambda data: data == [] or pytest.fail(repr(data)),  # a plain task: no children
    "QueryOperator.get_task_processing_img": process_image,
    "QueryOperator.get_frame_thumbnall": lambda data: (data and all(isinstance(p, str) for p in data)
                                                       or pytest.fail(repr(data))),
    "QueryOperator.get_render_log": render_log,
    "QueryOperator.supported_software": has("isAutoCommit", "defaultCgId", "renderInfoList"),
    "QueryOperator.supported_plugin": software_detail,
    "QueryOperator.get_pack_node_info": items_with("packNodeId", "packName"),
    "QueryOperator.get_transfer_server_msg": lambda data: isinstance(data, dict) or pytest.fail(repr(data)),
    "QueryOperator.get_raysync_user_key": lambda data: isinstance(data, dict) or pytest.fail(repr(data)),
    "QueryOperator.frame_number_to_stop": has("count"),
    "QueryOperator.stop_frame": has("count"),
    "QueryOperator.restart_frame": has("count"),
    "QueryOperator.get_custome_frames": has("count"),
    "QueryOperator.restart_failed_frames": has("count"),
    "RenderEnvOperator.add_render_env": has("editName"),
    "RenderEnvOperator.update_render_env": is_none,
    "RenderEnvOperator.set_default_render_env": is_none,
    "RenderEnvOperator.get_render_env": lambda data: isinstance(data, list) or pytest.fail(repr(data)),
    "RenderEnvOperator.delete_render_env": is_none,
    "TransmitOperator.get_transfer_config": transfer_config,
    "TransmitOperator.get_output_files": items_with("fileName", "fileSize", "lastModify", "filePath", "directory"),
}


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "methods")


@pytest.fixture(scope="module")
def flow(rayvision_sync_python, farm, tmp_path_factory):
    user = farm.create_user("methods", "--allow-commands")
    raw = Raw(farm, user)
    node = Node(farm, "methods-node", {"blender": "3.4.1", "command": ""}, tags=["gpu"])
    try:  # a task with a done frame (log lines, an image) and a waiting one
        task_id = check_envelope(raw.send("/api/render/submit/createTask", {"count": 1}))["data"]["taskIdList"][0]
        raw.call("/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "task.json",
                                                     "content": json.dumps(COMMAND_TASK)})
        raw.call("/api/render/submit/task", {"taskId": task_id})
        (lease,) = node.lease()
        node.heartbeat([lease], log=["rendering frame 1", "saved f_0001.png"])
        image = io.BytesIO()
        Image.new("RGB", (32, 24), (10, 20, 200)).save(image, "PNG")
        node.finish(lease, {"f_0001.png": image.getvalue()})
    finally:
        node.close()
        raw.close()
    home = tmp_path_factory.mktemp("methods-home")
    blender = taskjson.blender("D:/proj/shots/shot010.blend")
    blender["software_config"]["cg_version"] = "3.4"
    blender["task_info"].update(hardwareConfigIds=[], hardwareConfigId="", graphics_cards_num="2")
    env = {**os.environ, "RAYFARM_DOMAIN": farm.domain, "RAYFARM_USER_ID": user.access_id,
           "RAYFARM_USER_KEY": user.access_key, "RAYFARM_TASK": str(task_id), "RAYFARM_FRAME": str(lease["frameId"]),
           "RAYFARM_POOL": "gpu", "RAYFARM_COMMAND": json.dumps(COMMAND_TASK), "RAYFARM_BLENDER": json.dumps(blender),
           "HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(rayvision_sync_python), "-W", "ignore", str(SCRIPT)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=str(home))
    assert done.returncode == 0, f"the methods flow failed:\n{done.stderr[-4000:]}\nserver log:\n{farm.log()[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_method_of_every_operator_is_called(flow):
    assert set(flow["exported"]) == OPERATORS
    assert {name.split(".")[0] for name in flow["enumerated"]} == OPERATORS
    assert flow["without_arguments"] == [], "SDK methods the flow has no arguments for"
    assert sorted(entry["method"] for entry in flow["results"]) == sorted(flow["enumerated"])
    assert set(SHAPES) == set(flow["enumerated"])


def test_no_path_answers_there_is_no_api(flow):
    missing = [(entry["method"], answer["path"]) for entry in flow["results"] for answer in entry["answers"]
               if answer["code"] == 404 and NO_API in (answer["message"] or "")]
    assert missing == []


def test_every_answer_has_the_shape_its_callers_read(flow):
    wrong = []
    for entry in flow["results"]:
        if "error" in entry:
            wrong.append((entry["method"], entry["error"], entry["answers"][-3:]))
            continue
        try:
            SHAPES[entry["method"]](entry["result"])
        except (AssertionError, pytest.fail.Exception) as exc:
            wrong.append((entry["method"], str(exc)[:300]))
    assert wrong == []


def test_every_call_was_answered_with_a_success(flow):
    refused = [(entry["method"], answer) for entry in flow["results"] for answer in entry["answers"]
               if answer["code"] != 200]
    assert refused == []


def test_the_official_check_picks_a_pools_hardware_config(flow):
    checks = flow["checks"]
    assert isinstance(checks["pool"]["result"], int) and isinstance(checks["default"]["result"], int)
    [pool_id] = checks["pool"]["hardwareConfigIds"]
    assert pool_id != "1"
    assert sorted(checks["default"]["hardwareConfigIds"]) == sorted(["1", pool_id])  # "Default" tries every model
    assert checks["unknown"]["error"].startswith("HardwareConfigIdError")
