"""The unmodified official SDK (rayvision_api==3.0.4.3) drives a real rayfarm server.

The SDK lives in its own virtual environment (``rayvision_python`` fixture); the flows run in
``official_sdk_flow.py`` as a subprocess, which prints what every step answered. The whole main
flow runs once per module and each test below checks one part of it.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support import taskjson
from tests.support.farms import running_farm
from tests.support.signed import Raw

SCRIPT = Path(__file__).with_name("official_sdk_flow.py")
FRAMES = [str(n) for n in range(1, 11)]


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "official")


def run_official(python: Path, farm, users, scenario: str) -> dict:
    alice, bob = users
    env = {
        **os.environ,
        "RAYFARM_DOMAIN": farm.domain,
        "RAYFARM_USER1_ID": alice.access_id, "RAYFARM_USER1_KEY": alice.access_key,
        "RAYFARM_USER2_ID": bob.access_id, "RAYFARM_USER2_KEY": bob.access_key,
        "RAYFARM_TASK_JSON": json.dumps(taskjson.blender()),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(python), str(SCRIPT), scenario], capture_output=True, text=True, env=env,
                          timeout=120, cwd=str(SCRIPT.parent))
    assert done.returncode == 0, f"official SDK flow failed:\n{done.stderr[-4000:]}\nserver log:\n{farm.log()[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def flow(rayvision_python, farm, users):
    return run_official(rayvision_python, farm, users, "main")


def test_login_reads_profile_settings_and_bids(flow, users):
    alice, bob = users
    info = flow["login"]
    assert info["user_id"] == alice.user_id and info["user_name"] == "alice"
    assert {"config_bid", "input_bid", "output_bid", "task_over_time", "account_type"} <= set(info)
    assert flow["user2_login"]["user_id"] == bob.user_id
    assert flow["platforms"][0]["platform"] == 2 and flow["platforms"][0]["taskPrefix"] == "2W"


def test_create_task_with_level_labels_and_artist(flow, users):
    alice, _ = users
    created, t1 = flow["create"], flow["ids"]["t1"]
    assert created == {"taskIdList": [t1], "aliasTaskIdList": [f"2W{t1}"], "userId": alice.user_id}
    before = flow["info_created"]
    assert before["taskStatus"] == 0 and before["submitDate"] is None and before["totalFrames"] == 0
    assert t1 not in flow["list_before_submit"]  # created, never submitted: not listed
    item = flow["info_submitted"]
    assert item["taskUserLevel"] == 60 and item["artist"] == "alice"
    assert sorted(item["labels"]) == ["lighting", "shot010"]


def test_upload_then_submit_twice_is_one_task_with_the_same_frames(flow):
    t1 = flow["ids"]["t1"]
    assert flow["upload"] is None
    assert flow["submit_first"] == flow["submit_second"] == {"taskId": t1}
    assert flow["frames_first"] == flow["frames_second"] == {"total": 10, "indexes": FRAMES}
    assert flow["list_after_submit"].count(t1) == 1
    item = flow["info_submitted"]
    assert item["taskStatus"] == 0 and item["statusText"] == "render_task_status_0"
    assert item["totalFrames"] == 10 and item["waitingCount"] == 10
    assert item["doneFrames"] == item["failedFrames"] == item["executingFrames"] == 0
    assert item["sceneName"] == "shot010.blend" and item["outputFileName"] == f"{t1}_shot010"
    assert item["cgId"] == 2007 and item["framesRange"] == "1-10[1]" and item["submitDate"]
    assert flow["all_frame_status"]["totalFrames"] == flow["all_frame_status"]["waitingFramesTotal"] == 10


def test_task_id_property_keeps_one_id_until_submitted(flow):
    first, again, after_submit = flow["task_id_property"]
    assert first == again
    assert after_submit != first


def test_clone_copies_task_json_and_submits_at_once(flow):
    t1, t2 = flow["ids"]["t1"], flow["ids"]["t2"]
    assert flow["clone_create"]["taskIdList"] == [t2] and t2 != t1
    assert flow["clone_submit"] == {"taskId": t2}
    clone = flow["info_clone"]
    assert clone["cloneOriginalId"] == t1
    assert clone["taskStatus"] == 0 and clone["totalFrames"] == 10 and clone["sceneName"] == "shot010.blend"


def test_create_task_count_returns_that_many_ids_and_aliases(flow):
    many = flow["create_many"]
    assert len(many["taskIdList"]) == 3 and len(set(many["taskIdList"])) == 3
    assert many["aliasTaskIdList"] == [f"2W{i}" for i in many["taskIdList"]]


def test_create_task_count_five(rayvision_python, farm, users):
    result = run_official(rayvision_python, farm, users, "count")
    ids = result["create"]["taskIdList"]
    assert len(ids) == 5 and result["create"]["aliasTaskIdList"] == [f"2W{i}" for i in ids]
    items = result["info"]["items"]
    assert [item["id"] for item in items] == ids
    assert all(item["labels"] == ["batch"] and item["taskStatus"] == 0 for item in items)


def test_stop_and_start(flow):
    assert flow["stop"] is None and flow["start"] is None
    assert flow["status_after_stop"] == 10
    assert flow["frames_after_stop"] == [3]
    assert flow["status_after_start"] == 0


def test_priority_limit_overtime_and_full_speed(flow):
    assert flow["update_priority"] is None and flow["update_task_limit"] is None
    assert flow["set_task_overtime_top"] == "SUCCESS"
    assert flow["full_speed"] == "success"
    item = flow["info_settings"]
    assert item["taskUserLevel"] == 80 and item["taskLimit"] == 3 and item["overTimeStop"] == 1800
    assert item["taskStatus"] == 0


def test_abort_then_start_is_refused(flow):
    assert flow["abort"] is None and flow["status_after_abort"] == 35
    error = flow["refused"]["start_aborted"]
    assert error["error_code"] == 718, error
    assert "abandoned" in error["error"] and str(flow["ids"]["t2"]) in error["error"]
    assert flow["status_t2_after_refusals"] == 35


def test_delete_moves_the_task_to_the_recycle_bin(flow):
    t1 = flow["ids"]["t1"]
    assert flow["delete"] is None
    assert t1 in flow["list_after_submit"] and t1 not in flow["list_after_delete"]
    assert t1 in flow["recycle_after_delete"]
    assert flow["ids"]["t3"] not in flow["recycle_after_delete"]
    assert flow["info_deleted"]["isDelete"] == 0


def test_delete_of_a_waiting_task_is_refused(flow):
    error = flow["refused"]["delete_waiting"]
    assert error["error_code"] == 718, error
    assert "stop the task first" in error["error"]
    assert flow["status_t3_after_refusals"] == 0


def test_paging_past_the_end_is_empty(flow):
    page = flow["past_end"]
    assert page["items"] == [] and page["pageNum"] == 50 and page["total"] >= 3


def test_second_user_cannot_see_or_touch_the_first_users_tasks(flow, farm, users):
    _, bob = users
    assert flow["user2_list"]["items"] == [] and flow["user2_list"]["total"] == 0
    assert flow["user2_frame_status"]["totalFrames"] == 0
    t3 = flow["ids"]["t3"]
    for name in ("user2_task_info", "user2_stop"):
        error = flow["refused"][name]
        assert error["error_code"] == 937, error
    assert flow["status_t3_after_refusals"] == 0
    # exactly like an id that does not exist at all
    raw = Raw(farm, bob)
    try:
        unknown = 987654
        for path, name in (("/api/render/handle/queryTaskInfo/v2", "user2_task_info"),
                           ("/api/rendering/task/renderingTask/stopTask", "user2_stop")):
            answer = raw.call(path, {"taskIds": [unknown]})
            assert answer["code"] == 937
            foreign = flow["refused"][name]["error"]
            assert re.sub(r"\d+", "N", foreign) == re.sub(r"\d+", "N", answer["message"])
            assert str(t3) in foreign
    finally:
        raw.close()
