"""The Renderbus-compatible routes: path -> (body model, handler). Handlers are thin."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rayfarm.domain.paths import CONFIG_BID, INPUT_BID, OUTPUT_BID
from rayfarm.domain.taskjson import TaskSpec
from rayfarm.domain.uploadjson import asset_paths
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server import models as m
from rayfarm.server.farm import Farm
from rayfarm.store import projects, queries, quotas, users
from rayfarm.store import tasks as task_store
from rayfarm.store.db import Conflict
from rayfarm.store.users import User


@dataclass(frozen=True)
class Route:
    model: type[m.Body]
    handler: Callable[[Farm, User, Any, Any], Any]  # (farm, user, body, ctx: the call, server/audit.py)
    wakes: bool = False  # may make chunks waiting: wake long-polling nodes
    reads: bool = False  # changes nothing (its nonce may be written behind; see server/replay.py)


def _check_spec(farm: Farm) -> Callable[[User, TaskSpec, str | None], dict]:
    def check(user: User, spec: TaskSpec, upload_json: str | None) -> dict:
        if spec.software == "command" and not user.allow_commands:
            raise ApiError(Code.FORBIDDEN, "Your account may not run commands on this farm; ask an administrator to "
                                           "allow it (rayfarm user create --allow-commands).")
        if not spec.scene_path:
            return {"scene_root": None}
        located = farm.storage.locate_scene(user.id, spec.scene_path)
        if located["scene_root"] == "input":
            assets = [p for p in asset_paths(upload_json) if p != located["scene"]]
            located["inputs"] = [p for p in farm.storage.locate_inputs(user.id, assets) if p != located["scene"]]
        return located

    return check


# ---------------------------------------------------------------- login

def user_profile(farm: Farm, user: User, body, ctx) -> dict:
    ctx.signed_in()  # the official SDK's login: a sign-in record (signed API only, server/audit.py)
    return {"userId": user.id, "userName": user.name, "platform": int(farm.settings.platform), "email": user.email,
            "accountType": 1, "phone": "", "company": "", "name": user.name, "status": 0 if user.disabled else 1,
            "infoStatus": 0, "businessType": 1, "softType": 2007, "softStatus": 1,
            "allowCommands": user.allow_commands, "isAdmin": user.is_admin}


def user_setting(farm: Farm, user: User, body, ctx) -> dict:
    """The Renderbus settings (``taskOverTime`` in hours, as updateUserSetting's ``taskOverTimeSec`` set it), plus
    the caller's quotas and usage (rayfarm fields; null: unlimited)."""
    with farm.db.read() as conn:
        usage = quotas.usage(conn, user.id)
        over_time = users.task_over_time(conn, user.id)
    hours = over_time / 3600
    return {"taskOverTime": int(hours) if hours.is_integer() else round(hours, 3), "taskOverTimeSec": over_time,
            "singleNodeRenderFrames": "1", "maxIgnoreMapFlag": "0", "autoCommit": "2",
            "separateAccountFlag": 0, "mifileSwitchFlag": 0, "assfileSwitchFlag": 0, "manuallyStartAnalysisFlag": 0,
            "downloadDisable": 0, "ignoreMapFlag": 0, "justUploadConfigFlag": 0, "justUploadCgFlag": 0,
            **usage.as_json()}


def transfer_bid(farm: Farm, user: User, body, ctx) -> dict:
    return {"config_bid": CONFIG_BID, "input_bid": INPUT_BID, "output_bid": OUTPUT_BID, "parent_input_bid": INPUT_BID}


def platforms(farm: Farm, user: User, body, ctx) -> list:
    return [{"platform": int(farm.settings.platform), "name": "rayfarm", "type": 1, "status": 1,
             "taskPrefix": f"{farm.settings.platform}W", "isShow": 1, "zone": body.zone or 1}]


# ---------------------------------------------------------------- tasks

def create_task(farm: Farm, user: User, body: m.CreateTask, ctx) -> dict:
    with ctx.write() as conn:
        created = task_store.create(conn, user, count=body.count, priority=body.taskUserLevel,
                                    platform=farm.settings.platform, out_user_id=body.outUserId,
                                    task_labels=body.labels or [], clone_id=body.cloneOriginalId, artist=body.artist)
        ctx.task_ids = [task_id for task_id, _ in created]  # the record names the new ids
    return {"taskIdList": [i for i, _ in created], "aliasTaskIdList": [a for _, a in created], "userId": user.id}


def task_json_file(farm: Farm, user: User, body: m.TaskJsonFile, ctx) -> None:
    with ctx.write() as conn:
        task_store.put_file(conn, user, body.taskId, body.fileName, body.content)


def submit_task(farm: Farm, user: User, body: m.SubmitTask, ctx) -> dict:
    with ctx.write() as conn:
        task_store.submit(conn, user, body.taskId, body.producer, _check_spec(farm))
    return {"taskId": body.taskId}


def _list_op(operation) -> Callable:
    def handler(farm: Farm, user: User, body: m.TaskIdList, ctx) -> None:
        with ctx.write() as conn:
            operation(conn, user, body.taskIds)

    return handler


def full_speed(farm: Farm, user: User, body: m.TaskIdList, ctx) -> str:
    with ctx.write() as conn:
        task_store.full_speed(conn, user, body.taskIds)
    return "success"


def over_time(farm: Farm, user: User, body: m.OverTime, ctx) -> str:
    seconds = int(round(body.overTime))
    with ctx.write() as conn:
        task_store.change_settings(conn, user, body.taskIds, over_time_stop=seconds or None)
    return "SUCCESS"


def user_level(farm: Farm, user: User, body: m.UserLevel, ctx) -> None:
    with ctx.write() as conn:
        task_store.change_settings(conn, user, [body.taskId], priority=body.taskUserLevel)


def task_limit(farm: Farm, user: User, body: m.TaskLimit, ctx) -> None:
    with ctx.write() as conn:
        task_store.change_settings(conn, user, [body.taskId], task_limit=body.taskLimit or None)


def add_label(farm: Farm, user: User, body: m.AddLabel, ctx) -> None:
    with ctx.write() as conn:
        task_store.add_label(conn, user, body.taskIds, body.label)


def delete_label(farm: Farm, user: User, body: m.DeleteLabel, ctx) -> None:
    with ctx.write() as conn:
        task_store.delete_labels(conn, user, body.taskIds, body.labelNames)


# ---------------------------------------------------------------- queries

def _epoch(text: str | None, name: str) -> float | None:
    if not text:
        return None
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return time.mktime(datetime.strptime(text, pattern).timetuple())
        except ValueError:
            continue
    raise ApiError(Code.INVALID_PARAMETER, f"{name} {text!r} is not a date; write it as yyyy-MM-dd HH:mm:ss.")


def task_list(farm: Farm, user: User, body: m.TaskList, ctx) -> dict:
    with farm.db.read() as conn:
        return queries.task_list(conn, user, page_num=body.pageNum, page_size=body.pageSize,
                                 status_list=body.statusList, keyword=body.searchKeyword,
                                 start=_epoch(body.startTime, "startTime"), end=_epoch(body.endTime, "endTime"),
                                 recycle=body.recycleFlag == 1)


def task_info(farm: Farm, user: User, body: m.TaskIdList, ctx) -> dict:
    with farm.db.read() as conn:
        return queries.task_info(conn, user, body.taskIds)


def task_frames(farm: Farm, user: User, body: m.TaskFrames, ctx) -> dict:
    with farm.db.read() as conn:
        return queries.task_frames(conn, user, body.taskId, page_num=body.pageNum, page_size=body.pageSize,
                                   keyword=body.searchKeyword, statuses=body.status)


def frame_stats(farm: Farm, user: User, body, ctx) -> dict:
    with farm.db.read() as conn:
        return queries.frame_stats(conn, user)


# ---------------------------------------------------------------- projects

def project_list(farm: Farm, user: User, body, ctx) -> dict:
    with farm.db.read() as conn:
        return projects.list_projects(conn, user)


def project_add(farm: Farm, user: User, body: m.ProjectAdd, ctx) -> None:
    def add():
        with ctx.write() as conn:
            projects.add(conn, user, body.newName, body.status)

    try:
        add()
    except Conflict:  # the same name added by a concurrent call: now it exists (503 says so)
        add()


def project_delete(farm: Farm, user: User, body: m.ProjectDelete, ctx) -> None:
    with ctx.write() as conn:
        projects.remove(conn, user, body.delName)


ROUTES: dict[str, Route] = {
    "/api/render/setUp/queryUserProfile": Route(m.Empty, user_profile, reads=True),
    "/api/render/setUp/queryUserSetting": Route(m.Empty, user_setting, reads=True),
    "/api/render/transfer/getBid": Route(m.Empty, transfer_bid, reads=True),
    "/api/render/common/queryPlatforms": Route(m.Platforms, platforms, reads=True),
    "/api/render/submit/createTask": Route(m.CreateTask, create_task),
    "/api/render/submit/taskJsonFile": Route(m.TaskJsonFile, task_json_file),
    "/api/render/submit/task": Route(m.SubmitTask, submit_task, wakes=True),
    "/api/rendering/task/renderingTask/stopTask": Route(m.TaskIdList, _list_op(task_store.stop)),
    "/api/rendering/task/renderingTask/startTask": Route(m.TaskIdList, _list_op(task_store.start), wakes=True),
    "/api/render/handle/abandonTask": Route(m.TaskIdList, _list_op(task_store.abort)),
    "/api/render/handle/deleteTask": Route(m.TaskIdList, _list_op(task_store.delete_tasks)),
    "/api/render/handle/fullSpeedRendering": Route(m.TaskIdList, full_speed, wakes=True),
    "/api/render/handle/setTaskOverTimeStop": Route(m.OverTime, over_time),
    "/api/rendering/task/renderingTask/updateTaskUserLevel": Route(m.UserLevel, user_level),
    "/api/render/handle/updateTaskLimit": Route(m.TaskLimit, task_limit),
    "/api/render/handle/addTaskLabel": Route(m.AddLabel, add_label),
    "/api/render/handle/deleteTaskLabel": Route(m.DeleteLabel, delete_label),
    "/api/render/handle/getTaskList/v2": Route(m.TaskList, task_list, reads=True),
    "/api/render/handle/queryTaskInfo/v2": Route(m.TaskIdList, task_info, reads=True),
    "/api/render/handle/queryTaskFrames": Route(m.TaskFrames, task_frames, reads=True),
    "/api/render/handle/queryAllFrameStats": Route(m.Empty, frame_stats, reads=True),
    "/api/render/project/list": Route(m.Empty, project_list, reads=True),
    "/api/render/project/getList": Route(m.Empty, project_list, reads=True),
    "/api/render/project/add": Route(m.ProjectAdd, project_add),
    "/api/render/project/delete": Route(m.ProjectDelete, project_delete),
}
