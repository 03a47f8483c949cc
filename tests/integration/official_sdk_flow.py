"""Drive a rayfarm server with the unmodified official SDK (rayvision_api==3.0.4.3).

Run with the interpreter of the SDK's own virtual environment (it cannot import rayfarm):

    python official_sdk_flow.py SCENARIO

Environment: RAYFARM_DOMAIN (host:port), RAYFARM_USER1_ID / RAYFARM_USER1_KEY,
RAYFARM_USER2_ID / RAYFARM_USER2_KEY (a second user), RAYFARM_TASK_JSON (task.json text whose
scene is on the farm). Prints one JSON object with what each step answered; the test asserts it.

Scenarios: "main" (the whole task life cycle, clone, count, settings, delete, paging, refusals
and a second user), "count" (create_task with count > 1 only), "render" (submit a task with priority
frames and `stop_after_test` "1", wait for status 40, full speed, wait for the end, list the outputs;
needs render nodes; RAYFARM_DEADLINE bounds each wait, in seconds).
"""

import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from rayvision_api import RayvisionAPI
from rayvision_api.exception import RayvisionAPIError

DOMAIN = os.environ["RAYFARM_DOMAIN"]
TASK_JSON = os.environ.get("RAYFARM_TASK_JSON", "")


def quiet_logger():
    logger = logging.Logger("rayfarm-test-official-sdk")
    logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.WARNING)
    return logger


def client(user):
    return RayvisionAPI(access_id=os.environ[f"RAYFARM_{user}_ID"], access_key=os.environ[f"RAYFARM_{user}_KEY"],
                        domain=DOMAIN, platform="2", protocol="http", logger=quiet_logger())


def refused(call, *args):
    """Run a call that must fail; its error as a dict (the official SDK retries it 5 times first)."""
    try:
        answer = call(*args)
    except RayvisionAPIError as exc:
        return {"error_code": exc.error_code, "error": exc.error, "request": exc.request}
    return {"unexpected_success": answer}


def info(api, task_id):
    return api.query.task_info([task_id])["items"][0]


def status(api, task_id):
    return info(api, task_id)["taskStatus"]


def frame_indexes(api, task_id):
    answer = api.query.task_frames(task_id, page_num=1, page_size=1000)
    return {"total": answer["total"], "indexes": [f["frameIndex"] for f in answer["items"]]}


def ids(page):
    return [item["id"] for item in page["items"]]


def main_flow():
    out = {}
    api = client("USER1")
    out["login"] = dict(api.user_info)
    out["platforms"] = api.query.platforms()

    # create with level 60, labels and artist; upload task.json; submit twice
    created = api.task.create_task(count=1, task_user_level=60, labels=["shot010", "lighting"], artist="alice")
    out["create"] = created
    t1 = created["taskIdList"][0]
    out["info_created"] = info(api, t1)
    out["list_before_submit"] = ids(api.query.get_task_list(page_num=1, page_size=100))
    out["upload"] = api.transmit.upload_json_content(t1, TASK_JSON)
    out["submit_first"] = api.task.submit_task(t1)
    out["frames_first"] = frame_indexes(api, t1)
    out["submit_second"] = api.task.submit_task(t1)
    out["frames_second"] = frame_indexes(api, t1)
    out["info_submitted"] = info(api, t1)
    out["list_after_submit"] = ids(api.query.get_task_list(page_num=1, page_size=100))
    out["all_frame_status"] = api.query.all_frame_status()

    # the task_id property: one id until a submit succeeds
    first = api.task.task_id
    again = api.task.task_id
    api.transmit.upload_json_content(first, TASK_JSON)
    api.task.submit_task(first)
    after_submit = api.task.task_id
    out["task_id_property"] = [first, again, after_submit]

    # a clone copies task.json, so it submits at once
    clone = api.task.create_task(clone_original_id=t1)
    out["clone_create"] = clone
    t2 = clone["taskIdList"][0]
    out["clone_submit"] = api.task.submit_task(t2)
    out["info_clone"] = info(api, t2)

    # several ids at once; the first one is submitted (a waiting task)
    many = api.task.create_task(count=3)
    out["create_many"] = many
    t3 = many["taskIdList"][0]
    api.transmit.upload_json_content(t3, TASK_JSON)
    api.task.submit_task(t3)

    # stop / start
    out["stop"] = api.task.stop_task([t1])
    out["status_after_stop"] = status(api, t1)
    out["frames_after_stop"] = sorted({f["frameStatus"] for f in
                                       api.query.task_frames(t1, page_size=1000)["items"]})
    out["start"] = api.task.start_task([t1])
    out["status_after_start"] = status(api, t1)

    # settings
    out["update_priority"] = api.task.update_priority(t1, 80)
    out["update_task_limit"] = api.task.update_task_limit(t1, 3)
    out["set_task_overtime_top"] = api.task.set_task_overtime_top([t1], 1800)
    out["full_speed"] = api.task.full_speed([t1])
    out["info_settings"] = info(api, t1)

    # abort the clone
    out["abort"] = api.task.abort_task([t2])
    out["status_after_abort"] = status(api, t2)

    # delete t1 (stopped first): gone from the list, in the recycle bin
    api.task.stop_task([t1])
    out["delete"] = api.task.delete_task([t1])
    out["list_after_delete"] = ids(api.query.get_task_list(page_num=1, page_size=100))
    out["recycle_after_delete"] = ids(api.query.get_task_list(page_num=1, page_size=100, recycle_flag=1))
    out["info_deleted"] = info(api, t1)

    # paging past the end
    out["past_end"] = api.query.get_task_list(page_num=50, page_size=10)

    # the second user sees nothing of the first user's
    other = client("USER2")
    out["user2_login"] = dict(other.user_info)
    out["user2_list"] = other.query.get_task_list(page_num=1, page_size=100)
    out["user2_frame_status"] = other.query.all_frame_status()

    # refusals: each costs ~6 s of the official SDK's retries, so they run side by side
    with ThreadPoolExecutor(max_workers=4) as pool:
        jobs = {
            "start_aborted": pool.submit(lambda: refused(client("USER1").task.start_task, [t2])),
            "delete_waiting": pool.submit(lambda: refused(client("USER1").task.delete_task, [t3])),
            "user2_task_info": pool.submit(lambda: refused(client("USER2").query.task_info, [t3])),
            "user2_stop": pool.submit(lambda: refused(client("USER2").task.stop_task, [t3])),
        }
        out["refused"] = {name: job.result() for name, job in jobs.items()}

    out["status_t2_after_refusals"] = status(api, t2)
    out["status_t3_after_refusals"] = status(api, t3)
    out["ids"] = {"t1": t1, "t2": t2, "t3": t3}
    return out


def count_flow():
    api = client("USER1")
    created = api.task.create_task(count=5, task_user_level=50, labels=["batch"])
    return {"create": created, "info": api.query.task_info(created["taskIdList"])}


def wait_status(api, task_id, wanted, seen):
    """Poll queryTaskInfo until the task's status is in `wanted`; `seen` collects the statuses in order."""
    deadline = time.monotonic() + float(os.environ.get("RAYFARM_DEADLINE", "120"))
    while True:
        item = info(api, task_id)
        if not seen or seen[-1] != item["taskStatus"]:
            seen.append(item["taskStatus"])
        if item["taskStatus"] in wanted or time.monotonic() > deadline:
            return item
        time.sleep(0.2)


def render_flow():
    api = client("USER1")
    out = {"statuses": []}
    task_id = api.task.task_id
    out["task_id"] = task_id
    out["upload"] = api.transmit.upload_json_content(task_id, TASK_JSON)
    out["submit"] = api.task.submit_task(task_id)
    finished = {25, 30, 35, 45}
    out["at_test_done"] = wait_status(api, task_id, {40} | finished, out["statuses"])
    out["frames_at_test_done"] = api.query.task_frames(task_id, page_num=1, page_size=100)["items"]
    out["full_speed"] = api.task.full_speed([task_id])
    out["at_end"] = wait_status(api, task_id, finished, out["statuses"])
    out["frames"] = api.query.task_frames(task_id, page_num=1, page_size=100)["items"]
    out["outputs"] = api.transmit.get_output_files(task_id=task_id)
    return out


SCENARIOS = {"main": main_flow, "count": count_flow, "render": render_flow}

if __name__ == "__main__":
    result = SCENARIOS[sys.argv[1]]()
    sys.stdout.write(json.dumps(result, default=str) + "\n")
