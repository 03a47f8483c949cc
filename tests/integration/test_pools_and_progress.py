"""The farm's offer and a task's progress, the Renderbus way, against a real server: software versions and node
pools from the nodes that registered, tasks pinned to a pool and moved with editTaskHardwareConfig, a frame's
render log in pages, the latest rendered image.

Nodes here speak the native node API by hand (``tests.support.fake_node.Node``: register with software and tags, lease,
heartbeat with log lines, upload an output, complete), so what the server answers is tested without renderers.
"""

import io
import json
import sys

import pytest
from PIL import Image

from tests.support.fake_node import Node
from tests.support.farms import running_farm
from tests.support.signed import Raw, check_envelope

DETAIL = "/api/render/plugin/querySoftwareDetail"
SOFTWARE = "/api/render/plugin/querySoftwareList"
HARDWARE = "/api/render/hardwareConfig/list"
EDIT = "/api/render/handle/editTaskHardwareConfig"
PACK = "/api/render/submit/getUserPackNodeInfo"
SHOW_LOG = "/api/render/handle/showLog"
PROCESS_IMG = "/api/render/handle/loadTaskProcessImg"
DOWNLOAD = "/api/rayfarm/file/download"
CHECKED_KEYS = {"id", "status", "platform", "model", "ram", "gpuNum", "notSupportCgId", "notSupportCode",
                "notSupportCgVersions", "notSupportPluginList"}  # what RayvisionCheck.set_custom_hardware reads


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "pools")


@pytest.fixture(scope="module")
def world(farm):
    alice, bob = farm.create_user("alice", "--allow-commands"), farm.create_user("bob")
    raw, raw_bob = Raw(farm, alice), Raw(farm, bob)
    nodes = {"gpu": Node(farm, "gpu-1", {"blender": "3.4.1", "command": ""}, tags=["gpu", "fast"]),
             "cpu": Node(farm, "cpu-1", {"blender": "4.2.0", "command": ""}, tags=["cpu"])}
    yield {"raw": raw, "raw_bob": raw_bob, "nodes": nodes, "alice": alice}
    for client in (raw, raw_bob, *nodes.values()):
        client.close()


def ok(raw: Raw, path: str, body=None, **options):
    answer = check_envelope(raw.send(path, body or {}, **options))
    assert answer["code"] == 200, answer
    return answer["data"]


def refused(raw: Raw, path: str, body: dict, code: int, *fragments: str) -> str:
    answer = check_envelope(raw.send(path, body))
    assert answer["code"] == code and answer["data"] is None, answer
    for fragment in fragments:
        assert fragment in answer["message"], answer["message"]
    return answer["message"]


def command_task(raw: Raw, frames: str = "1-1[1]", **task_info) -> int:
    content = {"software_config": {"cg_name": "command"},
               "task_info": {"frames_per_task": "1", "pre_frames": "000", "stop_after_test": "2", **task_info},
               "scene_info_render": {"common": {"frames": frames}},
               "additional_info": {"command": [sys.executable, "-c", "pass"]}}
    task_id = ok(raw, "/api/render/submit/createTask", {"count": 1, "taskUserLevel": 50})["taskIdList"][0]
    ok(raw, "/api/render/submit/taskJsonFile", {"taskId": task_id, "fileName": "task.json",
                                                 "content": json.dumps(content)})
    ok(raw, "/api/render/submit/task", {"taskId": task_id})
    return task_id


def pool_id(raw: Raw, model: str) -> int:
    return next(item["id"] for item in ok(raw, HARDWARE, {"cloneTask": "false"}) if item["model"] == model)


# ------------------------------------------------------------------ what the nodes offer


def test_blender_versions_are_the_nodes_in_task_json_forms(world):
    for os_name in ("windows", "linux"):  # the client's OS: the nodes run Linux, both see the same
        data = ok(world["raw"], DETAIL, {"cgId": 2007, "osName": os_name})
        assert data["cgPlugin"] == []
        assert [v["cgVersion"] for v in data["cgVersion"]] == ["3.4", "3.4.1", "4.2", "4.2.0"]
        assert all(v["id"] and v["cgId"] == 2007 and v["cgName"] == "Blender" for v in data["cgVersion"])
    assert ok(world["raw"], DETAIL, {"cgId": 2000, "osName": "windows"}) == {"cgPlugin": [], "cgVersion": []}  # Maya


def test_command_is_offered_only_to_users_allowed_to_run_commands(world):
    mine = ok(world["raw"], SOFTWARE)
    assert mine["defaultCgId"] == 2007 and mine["isAutoCommit"] == 2
    assert [(s["cgId"], s["cgName"]) for s in mine["renderInfoList"]] == [(2007, "Blender"), (0, "command")]
    assert mine["renderInfoList"][0]["cgVersions"] == ["3.4", "3.4.1", "4.2", "4.2.0"]
    theirs = ok(world["raw_bob"], SOFTWARE)
    assert [s["cgName"] for s in theirs["renderInfoList"]] == ["Blender"]
    assert ok(world["raw_bob"], DETAIL, {"cgId": 0, "osName": "linux"})["cgVersion"] == []
    assert [v["cgVersion"] for v in ok(world["raw"], DETAIL, {"cgId": 0, "osName": "linux"})["cgVersion"]] == [""]


def test_hardware_configs_are_the_pools_on_every_platform_a_check_compares(world):
    items = ok(world["raw"], HARDWARE, {"cloneTask": "false"}, platform="6")  # a customer on platform 6
    assert all(CHECKED_KEYS <= set(item) for item in items)
    models = {(item["model"], item["platform"]) for item in items}
    assert models == {(model, platform) for model in ("Default", "gpu", "fast", "cpu") for platform in (2, 6)}
    default = [item for item in items if item["model"] == "Default"]
    assert {item["id"] for item in default} == {1} and default[0]["nodes"] == 2 and default[0]["tag"] is None
    for item in items:
        assert item["ram"] == "128GB" and item["gpuNum"] is None and item["status"] == 1
        assert item["notSupportCgId"] == item["notSupportCode"] == item["notSupportCgVersions"] == []
    packs = ok(world["raw_bob"], PACK)
    assert {(p["packName"], p["nodes"]) for p in packs} == {("Default", 2), ("gpu", 1), ("fast", 1), ("cpu", 1)}
    assert {p["packNodeId"] for p in packs} == {item["id"] for item in items}


# ------------------------------------------------------------------ pinned tasks


def test_a_pinned_task_goes_to_its_pool_and_moves_with_edit_task_hardware_config(world):
    raw, gpu, cpu = world["raw"], world["nodes"]["gpu"], world["nodes"]["cpu"]
    task_id = command_task(raw, "1-2[1]", hardwareConfigIds=[str(pool_id(raw, "gpu"))], hardwareConfigId="")
    assert ok(raw, "/api/render/handle/queryTaskInfo/v2", {"taskIds": [task_id]})["items"][0]["pools"] == ["gpu"]
    in_use = ok(raw, HARDWARE, {"cloneTask": "false", "taskIds": [task_id]})
    assert {item["model"] for item in in_use} == {"gpu"}
    assert cpu.lease() == []
    (lease,) = gpu.lease()
    assert lease["taskId"] == task_id
    gpu.finish(lease)

    ok(raw, EDIT, {"taskIds": [task_id], "hardwareConfigIds": [str(pool_id(raw, "cpu"))], "model": "cpu",
                   "gpuNum": "", "ram": "128GB"})
    assert gpu.lease() == []
    (lease,) = cpu.lease()
    assert lease["taskId"] == task_id
    cpu.finish(lease)
    assert ok(raw, "/api/render/handle/queryTaskInfo/v2", {"taskIds": [task_id]})["items"][0]["taskStatus"] == 25

    other = command_task(raw, hardwareConfigIds=[str(pool_id(raw, "fast"))])
    ok(raw, EDIT, {"taskIds": [other], "hardwareConfigIds": [], "model": "Default", "gpuNum": "", "ram": "128GB"})
    assert {item["model"] for item in ok(raw, HARDWARE, {"cloneTask": "false", "taskIds": [other]})} == {"Default"}
    (lease,) = cpu.lease()  # any node now
    assert lease["taskId"] == other
    cpu.finish(lease)


def test_unknown_hardware_configs_are_refused_and_change_nothing(world):
    raw = world["raw"]
    task_id = command_task(raw, hardwareConfigIds=[str(pool_id(raw, "fast"))])
    refused(raw, EDIT, {"taskIds": [task_id], "hardwareConfigIds": ["424242"], "model": "x", "gpuNum": "",
                        "ram": "128GB"}, 600, "no hardware config 424242", "hardwareConfig/list")
    refused(raw, EDIT, {"taskIds": [task_id], "hardwareConfigIds": [], "model": "28C", "gpuNum": "", "ram": "64GB"},
            600, "'28C'")
    refused(raw, EDIT, {"taskIds": [task_id], "hardwareConfigIds": ["gpu"], "model": "gpu", "gpuNum": "",
                        "ram": "128GB"}, 600, "hardwareConfigIds[0]", "not a hardware config id")
    refused(raw, EDIT, {"taskIds": [task_id], "model": "gpu"}, 601, "hardwareConfigIds")
    assert ok(raw, "/api/render/handle/queryTaskInfo/v2", {"taskIds": [task_id]})["items"][0]["pools"] == ["fast"]
    task_json = {"software_config": {"cg_name": "command"}, "task_info": {"hardwareConfigIds": ["424242"]},
                 "scene_info_render": {"common": {"frames": "1"}}, "additional_info": {"command": ["true"]}}
    created = ok(raw, "/api/render/submit/createTask", {"count": 1})["taskIdList"][0]
    ok(raw, "/api/render/submit/taskJsonFile", {"taskId": created, "fileName": "task.json",
                                                 "content": json.dumps(task_json)})
    refused(raw, "/api/render/submit/task", {"taskId": created}, 600, "424242")
    world["nodes"]["gpu"].lease()  # the fast task: out of the way of the next tests
    refused(raw, HARDWARE, {"cloneTask": "false", "taskIds": [1_999_999_999]}, 937, "1999999999")


# ------------------------------------------------------------------ a frame's log, the latest image


@pytest.fixture(scope="module")
def rendered(world):
    """A task of two frames: the first rendered (2,500 log lines, an image), the second waiting."""
    raw, node = world["raw"], world["nodes"]["cpu"]
    task_id = command_task(raw, "1-2[1]")
    (lease,) = node.lease()
    lines = [f"line {n}" for n in range(2500)]
    for start in range(0, len(lines), 1000):
        node.heartbeat([lease], log=lines[start:start + 1000])
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 200, 0)).save(buffer, "PNG")
    node.finish(lease, {"f_0001.png": buffer.getvalue()})
    frames = ok(raw, "/api/render/handle/queryTaskFrames", {"taskId": task_id})["items"]
    return {"task": task_id, "done": frames[0]["id"], "waiting": frames[1]["id"]}


def test_show_log_pages_a_frames_render_log(world, rendered):
    raw = world["raw"]
    first = ok(raw, SHOW_LOG, {"renderingType": "render", "pageNum": 1, "pageSize": 1, "id": rendered["done"]})
    assert first["items"][0].startswith("=== attempt 1 on node cpu-1")  # the farm's line, then the node's
    assert first["items"][1:] == [f"line {n}" for n in range(999)]
    assert (first["pageCount"], first["pageNum"], first["total"], first["size"]) == (3, 1, 2501, 1)
    rest = ok(raw, SHOW_LOG, {"renderingType": "render", "pageNum": 2, "pageSize": 2, "id": rendered["done"]})
    assert rest["items"] == [f"line {n}" for n in range(999, 2500)]
    assert ok(raw, SHOW_LOG, {"pageNum": 4, "id": rendered["done"]})["items"] == []
    empty = ok(raw, SHOW_LOG, {"id": rendered["waiting"]})
    assert (empty["items"], empty["total"], empty["pageCount"]) == ([], 0, 0)


def test_show_log_bad_input(world, rendered):
    raw = world["raw"]
    refused(raw, SHOW_LOG, {"renderingType": "render", "pageNum": 1, "pageSize": 1, "id": None}, 601, "'id'")
    refused(raw, SHOW_LOG, {"renderingType": "merge", "id": rendered["done"]}, 600, "renderingType", "\"render\"")
    refused(raw, SHOW_LOG, {"id": rendered["done"], "pageSize": 101}, 600, "pageSize")
    unknown = refused(raw, SHOW_LOG, {"id": 1_999_999_999}, 404, "does not exist")
    theirs = refused(world["raw_bob"], SHOW_LOG, {"id": rendered["done"]}, 404)
    assert theirs.replace(str(rendered["done"]), "N") == unknown.replace("1999999999", "N")


def test_the_latest_image_can_be_fetched_with_the_users_credentials(world, rendered):
    raw = world["raw"]
    data = ok(raw, PROCESS_IMG, {"taskId": rendered["task"]})
    assert (data["width"], data["height"], data["block"]) == (40, 30, 1)
    [[grab]] = data["grabInfo"]
    assert grab["frameId"] == rendered["done"] and grab["frameIndex"] == "1" and grab["frameStatus"] == "4"
    assert grab["grabArea"] == "output" and grab["grabUrl"] == f"/{rendered['task']}_command/f_0001.png"
    image = raw.send(DOWNLOAD, {"path": grab["grabUrl"], "area": "output"})
    with Image.open(io.BytesIO(image.content)) as decoded:
        assert decoded.size == (40, 30) and decoded.getpixel((20, 15)) == (0, 200, 0)
    thumbnail = raw.send(DOWNLOAD, {"path": grab["thumbnailUrl"], "area": "thumbnails"})
    with Image.open(io.BytesIO(thumbnail.content)) as decoded:
        assert decoded.format == "JPEG" and decoded.size == (40, 30)
    assert ok(raw, PROCESS_IMG, {"taskId": rendered["task"], "frameType": 2})["grabInfo"] == []  # no photon frames
    nothing = ok(raw, PROCESS_IMG, {"taskId": command_task(raw)})
    assert (nothing["grabInfo"], nothing["block"]) == ([], 0)
    refused(world["raw_bob"], PROCESS_IMG, {"taskId": rendered["task"]}, 937)
    refused(raw, PROCESS_IMG, {"frameType": 5}, 601, "taskId")


def test_no_traceback_in_the_server_log(farm):
    assert "Traceback" not in farm.log()
