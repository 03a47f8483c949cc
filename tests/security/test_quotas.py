"""Per-user quotas on a real server: each limit refuses with its code and a sentence naming the limit, the use
and the command that raises it; a refusal changes nothing; `rayfarm user quota` raises it and the same call
passes; queryUserSetting and `rayfarm user quota/list` report limits and usage (docs/design.md, invariant 20).

The limits are set with the real command line while the server runs: the server reads them in each call's
transaction, so no wait is needed.
"""

import hashlib
import json
import secrets

import httpx
import pytest

from tests.support import taskjson
from tests.support.fake_node import Node
from tests.support.farms import make_users, running_farm
from tests.support.processes import rayfarm
from tests.support.signed import CREATE, DELETE, SETTING, START, STOP, SUBMIT, UPLOAD, UPLOAD_INIT, Raw
from tests.support.snapshots import db_snapshot, diff, file_snapshot
from tests.support.taskjson import SCENE


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    """A farm of its own: the storage test leases chunks, which must be this module's."""
    yield from running_farm(tmp_path_factory, "quotas")


def quota(farm, name: str, *options: str) -> dict:
    """`rayfarm user quota NAME [options] --json` on the farm's database; its answer."""
    done = rayfarm("user", "quota", name, "--data-dir", str(farm.data_dir), "--json", *options, env=farm.env)
    return json.loads(done.stdout)


def user(farm, name: str, *options: str, commands: bool = False) -> Raw:
    (made,) = make_users(farm, name, commands=(name,) if commands else ())
    farm.input_file(made, SCENE)
    if options:
        quota(farm, name, *options)
    return Raw(farm, made)


def refused(farm, raw: Raw, path: str, body: dict, code: int) -> str:
    """The call is refused with ``code`` and nothing in the database or the data dir changes; its sentence."""
    before, files = db_snapshot(farm), file_snapshot(farm.data_dir)
    answer = raw.call(path, body)
    assert answer["code"] == code, answer
    assert diff(before, db_snapshot(farm)) == {}
    assert diff(files, file_snapshot(farm.data_dir)) == {}
    return answer["message"]


def test_active_tasks(farm):
    raw = user(farm, "quinn", "--active-tasks", "2")
    first, second = raw.submit(), raw.submit()
    third = raw.create()
    message = refused(farm, raw, SUBMIT, {"taskId": third}, 403)
    assert message == ("Your account may have at most 2 tasks waiting or rendering (you have 2); wait for some to "
                       "finish, or ask the farm's administrator to raise it: rayfarm user quota quinn "
                       "--active-tasks 4.")
    assert quota(farm, "quinn", "--active-tasks", "3")["maxActiveTasks"] == 3
    raw.ok(SUBMIT, {"taskId": third})
    assert raw.ok(SETTING)["activeTasks"] == 3

    raw.ok(STOP, {"taskIds": [first, second]})  # stopped tasks do not count; starting them again does
    raw.submit()
    message = refused(farm, raw, START, {"taskIds": [first, second]}, 403)
    assert "at most 3 tasks waiting or rendering (you have 2, and this would add 2)" in message
    assert "--active-tasks 6." in message
    quota(farm, "quinn", "--active-tasks", "none")
    raw.ok(START, {"taskIds": [first, second]})
    assert raw.ok(SETTING)["activeTasks"] == 4
    raw.close()


def test_tasks_created_but_not_submitted(farm):
    raw = user(farm, "uma", "--active-tasks", "3")
    ids = raw.ok(CREATE, {"count": 3})["taskIdList"]
    message = refused(farm, raw, CREATE, {"count": 1}, 403)
    assert message.startswith("Your account may have at most 3 tasks created but not submitted (you have 3, and this "
                              "would create 1 more); submit or delete some of them (deleteTask)")
    assert message.endswith("rayfarm user quota uma --active-tasks 6.")
    raw.ok(DELETE, {"taskIds": ids[:1]})
    raw.ok(CREATE, {"count": 1})
    refused(farm, raw, CREATE, {"count": 2}, 403)
    quota(farm, "uma", "--active-tasks", "5")
    assert len(raw.ok(CREATE, {"count": 2})["taskIdList"]) == 2
    assert raw.ok(SETTING)["unsubmittedTasks"] == 5
    raw.close()


def test_frames_per_task(farm):
    raw = user(farm, "fred", "--frames-per-task", "10")
    task_id = raw.create(taskjson.blender(frames="1-11"))
    message = refused(farm, raw, SUBMIT, {"taskId": task_id}, 511)
    assert message == ("Your account may render at most 10 frames in one task (this task has 11); split the frame "
                       "range over several tasks, or ask the farm's administrator to raise it: rayfarm user quota "
                       "fred --frames-per-task 11.")
    assert raw.ok(SETTING)["maxFramesPerTask"] == 10
    quota(farm, "fred", "--frames-per-task", "11")
    raw.ok(SUBMIT, {"taskId": task_id})
    assert raw.ok("/api/render/handle/queryTaskInfo/v2", {"taskIds": [task_id]})["items"][0]["totalFrames"] == 11
    raw.close()


def upload_init(content: bytes, name: str) -> dict:
    return {"localPath": f"D:/quota/{name}", "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def test_storage_counts_uploads_and_outputs(farm):
    raw = user(farm, "stella", "--storage", "1K", commands=True)
    big = secrets.token_bytes(1500)
    message = refused(farm, raw, UPLOAD_INIT, upload_init(big, "big.bin"), 403)
    assert message.startswith("Your account may store at most 1 KiB (you use 0 bytes, render outputs included), so "
                              "this 1.5 KiB upload does not fit")
    assert message.endswith("rayfarm user quota stella --storage 2K.")

    first = secrets.token_bytes(600)
    started = raw.ok(UPLOAD_INIT, upload_init(first, "a.bin"))  # reserves 600 bytes until it finishes
    second = upload_init(secrets.token_bytes(600), "b.bin")
    assert "600 bytes held for unfinished uploads" in refused(farm, raw, UPLOAD_INIT, second, 403)
    response = httpx.put(farm.url + started["url"], params={"offset": 0}, content=first, timeout=30)
    assert response.status_code == 200 and response.json()["done"], response.text
    assert {k: raw.ok(SETTING)[k] for k in ("maxStorageBytes", "storageBytes", "storageReservedBytes")} == \
        {"maxStorageBytes": 1024, "storageBytes": 600, "storageReservedBytes": 0}
    assert raw.ok(UPLOAD_INIT, upload_init(first, "again.bin"))["done"]  # content already stored: no new bytes

    task_id = raw.submit(taskjson.command(frames="1-1"))  # a node's output is stored and counted even past the limit
    node = Node(farm, "quota-node")
    (lease,) = node.lease()
    assert lease["taskId"] == task_id
    response = node.http.put(f"/v1/worker/output/{lease['leaseId']}/out.png", content=b"x" * 1000)
    assert response.json() == {"accepted": True, "size": 1000, "sha256": hashlib.sha256(b"x" * 1000).hexdigest()}
    node.close()
    assert raw.ok(SETTING)["storageBytes"] == 1600

    assert "you use 1.6 KiB" in refused(farm, raw, UPLOAD_INIT, upload_init(b"y", "y.bin"), 403)
    blocked = raw.ok(CREATE, {"count": 1})["taskIdList"][0]
    raw.ok(UPLOAD, {"taskId": blocked, "fileName": "task.json",
                        "content": json.dumps(taskjson.blender(frames="1-2[1]"))})
    message = refused(farm, raw, SUBMIT, {"taskId": blocked}, 403)
    assert message.startswith("Your account may store at most 1 KiB and uses 1.6 KiB (render outputs included), so "
                              "a new task's outputs would not fit")
    assert message.endswith("rayfarm user quota stella --storage 3K.")

    assert quota(farm, "stella", "--recount")["storageBytes"] == 1600  # the count agrees with the disk
    quota(farm, "stella", "--storage", "1M")
    raw.ok(UPLOAD_INIT, upload_init(b"y", "y.bin"))
    raw.ok(SUBMIT, {"taskId": blocked})
    raw.close()


def test_usage_is_reported_to_the_user_and_the_administrator(farm):
    raw = user(farm, "ursula")
    setting = raw.ok(SETTING)
    assert setting["taskOverTime"] == 12 and setting["singleNodeRenderFrames"] == "1"  # the Renderbus fields stay
    assert {k: setting[k] for k in ("maxActiveTasks", "activeTasks", "maxUnsubmittedTasks", "unsubmittedTasks",
                                     "maxFramesPerTask", "maxStorageBytes", "storageBytes")} == \
        {"maxActiveTasks": 1000, "activeTasks": 0, "maxUnsubmittedTasks": 1000, "unsubmittedTasks": 0,
         "maxFramesPerTask": 1_000_000, "maxStorageBytes": None, "storageBytes": 0}
    raw.submit()
    raw.ok(CREATE, {"count": 2})
    shown = quota(farm, "ursula", "--storage", "500G", "--frames-per-task", "5000")
    assert shown.pop("userName") == "ursula"
    setting = raw.ok(SETTING)
    assert {k: setting[k] for k in shown} == shown  # the CLI and the API agree
    assert (shown["activeTasks"], shown["unsubmittedTasks"], shown["maxStorageBytes"], shown["maxFramesPerTask"]) == \
        (1, 2, 500 * 1024**3, 5000)
    listed = json.loads(rayfarm("user", "list", "--data-dir", str(farm.data_dir), "--json", env=farm.env).stdout)
    assert [u["quota"] for u in listed if u["userName"] == "ursula"] == [shown]
    table = rayfarm("user", "quota", "ursula", "--data-dir", str(farm.data_dir), env=farm.env).stdout
    assert "1 / 1000" in table and "500 GiB" in table and "5000" in table
    bad = rayfarm("user", "quota", "ursula", "--data-dir", str(farm.data_dir), "--storage", "lots", env=farm.env,
                  check=False)
    assert bad.returncode == 2 and "--storage is a size like 500G" in bad.stderr
    raw.close()
