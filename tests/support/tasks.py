"""Tasks through rayfarm's SDK: submit, read back, wait for a status; what a failed wait shows."""

import json
from collections.abc import Iterable

from rayfarm.sdk import RayfarmAPI
from tests.support.processes import FarmServer, FarmWorker, wait_for

FINISHED = {23, 25, 30, 35, 45}  # over time, done, done with failures, abandoned, failed


def submit(api: RayfarmAPI, task_json: dict, task_id: int | None = None, **create) -> int:
    """createTask (with ``create``'s options) unless ``task_id`` is given, taskJsonFile, submit; the task id."""
    if task_id is None:
        task_id = api.task.create_task(**create)["taskIdList"][0]
    api.task.upload_task_json(task_id, task_json)
    api.task.submit_task(task_id)
    return task_id


def info(api: RayfarmAPI, task_id: int) -> dict:
    return api.query.task_info([task_id])["items"][0]


def status(api: RayfarmAPI, task_id: int) -> int:
    return info(api, task_id)["taskStatus"]


def frames_of(api: RayfarmAPI, task_id: int) -> dict[str, dict]:
    """Every chunk of a task by frameIndex, in the API's order."""
    found, page = {}, 1
    while items := api.query.task_frames(task_id, page_num=page, page_size=1000)["items"]:
        found.update({item["frameIndex"]: item for item in items})
        page += 1
    return found


def report(farm: FarmServer, api: RayfarmAPI | None = None, task_ids: Iterable[int] = (),
           workers: Iterable[FarmWorker] = ()) -> str:
    """What a failed wait shows: the tasks, their unfinished chunks, the end of the server's and the nodes' logs."""
    parts = []
    for task_id in task_ids:
        try:
            parts.append(f"task: {json.dumps(info(api, task_id))}")
            parts += [f"frame: {json.dumps(f)}" for f in frames_of(api, task_id).values() if f["frameStatus"] != 4]
        except Exception as exc:  # the report must not hide the original failure
            parts.append(f"(could not query task {task_id}: {exc})")
    parts.append(f"server log:\n{farm.log()[-4000:]}")
    for worker in [*farm.workers, *workers]:
        parts.append(f"worker {worker.name} log:\n{worker.log()[-3000:]}")
    return "\n".join(parts)


def wait_task(farm: FarmServer, api: RayfarmAPI, task_id: int, statuses: set[int], timeout: float = 120) -> dict:
    """Wait until the task's status is one of ``statuses``; its queryTaskInfo item."""
    def reached():
        item = info(api, task_id)
        return item if item["taskStatus"] in statuses else None

    return wait_for(reached, timeout, f"task {task_id} to reach status {sorted(statuses)}", interval=0.2,
                    details=lambda: report(farm, api, [task_id]))
