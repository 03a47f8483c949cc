"""The security matrix's inventory of the app's routes (tests/security/test_auth_*.py): which ones are public,
and for every other one a request its owner could send. A route the app serves without a place here fails
`test_every_route_of_the_app_is_covered`."""

import re

from tests.support.signed import UNKNOWN

# Routes anyone may call: liveness and Prometheus metrics (counts only, no user data).
PUBLIC = {"/healthz", "/metrics"}
SIGNED_PREFIX = "/api/{rest:path}"  # the dispatcher of every route in TABLE
UPLOAD_ROUTES = {"/v1/upload/{upload_id}"}  # the unguessable upload id is the capability
# The dashboard (rayfarm/web): the page and its static files are public; everything else needs the session
# cookie from /web/signin, and /web/api/<path> runs the signed route /api/<path> (same TABLE) for it.
WEB_PUBLIC = {"/", "/web/static"}
# a task's output files, their zip and previews (rayfarm/web/outputs.py): GET with the session cookie
WEB_FILES = {"/web/tasks/{task_id:int}/outputs/{name}", "/web/tasks/{task_id:int}/outputs.zip",
             "/web/tasks/{task_id:int}/contact-sheet.jpg", "/web/tasks/{task_id:int}/preview.mp4"}
WEB_SESSION = {"/web/me", "/web/counts", "/web/thumbnails/{task_id:int}/{frame_id:int}/{name}", *WEB_FILES}
WEB_SIGN = {"/web/signin", "/web/signout", "/web/signout-everywhere"}
WEB_API = "/web/api/{rest:path}"


ENV = {"cgId": 2007, "cgName": "Blender", "cgVersion": "3.4", "renderSystem": 0, "pluginIds": []}  # a render environment


def bodies(w: dict) -> dict[str, dict]:
    """For every signed route: a body that, from its owner with valid credentials, would be accepted."""
    waiting, created, frame = w["waiting"], w["created"], w["frame"]
    return {
        "/api/render/setUp/queryUserProfile": {},
        "/api/render/setUp/queryUserSetting": {},
        "/api/render/transfer/getBid": {},
        "/api/render/common/queryPlatforms": {"zone": 1},
        "/api/render/submit/createTask": {"count": 1, "taskUserLevel": 50, "cloneOriginalId": waiting},
        "/api/render/submit/taskJsonFile": {"taskId": created, "fileName": "upload.json", "content": "{}"},
        "/api/render/submit/task": {"taskId": waiting},
        "/api/rendering/task/renderingTask/stopTask": {"taskIds": [waiting]},
        "/api/rendering/task/renderingTask/startTask": {"taskIds": [waiting]},
        "/api/render/handle/abandonTask": {"taskIds": [waiting]},
        "/api/render/handle/deleteTask": {"taskIds": [created]},
        "/api/render/handle/fullSpeedRendering": {"taskIds": [waiting]},
        "/api/render/handle/setTaskOverTimeStop": {"taskIds": [waiting], "overTime": 60},
        "/api/rendering/task/renderingTask/updateTaskUserLevel": {"taskId": waiting, "taskUserLevel": 90},
        "/api/render/handle/updateTaskLimit": {"taskId": waiting, "taskLimit": 3},
        "/api/render/handle/addTaskLabel": {"taskIds": [waiting], "label": "intruder"},
        "/api/render/handle/deleteTaskLabel": {"taskIds": [waiting], "labelNames": ["keep"]},
        "/api/render/handle/getTaskList/v2": {"pageNum": 1, "pageSize": 10},
        "/api/render/handle/queryTaskInfo/v2": {"taskIds": [waiting]},
        "/api/render/handle/queryTaskFrames": {"taskId": waiting},
        "/api/render/handle/queryAllFrameStats": {},
        "/api/render/project/list": {},
        "/api/render/project/getList": {},
        "/api/render/project/add": {"newName": "intruder"},
        "/api/render/project/delete": {"delName": "alpha"},
        "/api/render/handle/recommitTasks": {"taskIds": [waiting]},
        "/api/render/handle/recommitTaskFrames": {"taskId": waiting, "ids": [frame]},
        "/api/render/handle/stopTaskFrames": {"taskId": waiting, "ids": [frame]},
        "/api/render/handle/loadingFrameThumbnail": {"id": frame},
        "/api/render/file/operate/getOutputUserDirFile": {"taskId": waiting},
        "/api/rayfarm/task/log": {"taskId": waiting, "frameId": frame},
        "/api/render/handle/showLog": {"renderingType": "render", "pageNum": 1, "pageSize": 1, "id": frame},
        "/api/render/handle/loadTaskProcessImg": {"taskId": waiting},
        "/api/render/plugin/querySoftwareDetail": {"cgId": 2007, "osName": "linux"},
        "/api/render/plugin/querySoftwareList": {},
        "/api/render/hardwareConfig/list": {"cloneTask": "false", "taskIds": [waiting]},
        "/api/render/handle/editTaskHardwareConfig": {"taskIds": [waiting], "hardwareConfigIds": ["1"],
                                                      "model": "Default", "gpuNum": "", "ram": "128GB"},
        "/api/render/submit/getUserPackNodeInfo": {},
        "/api/rayfarm/file/download": {"path": "/x.png"},
        "/api/rayfarm/file/uploadInit": {"localPath": "D:/proj/intruder.blend", "size": 3, "sha256": "0" * 64},
        "/api/rayfarm/task/outputs": {"taskId": waiting},
        "/api/rayfarm/task/preview": {"taskId": waiting, "kind": "sheet"},
        "/api/rayfarm/worker/list": {},
        "/api/rayfarm/worker/setMode": {"workerIds": [1], "mode": "disable"},
        "/api/rayfarm/farm/summary": {},
        "/api/render/setUp/updateUserSetting": {"taskOverTimeSec": 3600},
        "/api/render/plugin/addUserPluginConfig": {**ENV, "editName": "intruder"},
        "/api/render/plugin/editUserPluginConfig": {**ENV, "cgVersion": "4.2", "editName": "studio"},
        "/api/render/plugin/deleteUserPluginConfig": {"editName": "studio"},
        "/api/render/plugin/setDefaultUserPluginConfig": {"editName": "studio"},
        "/api/render/plugin/getUserPluginConfig": {"osName": 0},
        "/api/render/handle/operate/sdk/taskRecord": {"pageNum": 1, "pageSize": 10, "platform": 2, "taskIds": [waiting]},
        "/api/render/handle/operate/sdk/loginRecord": {"pageNum": 1, "pageSize": 10},
        "/api/render/submit/queryAnalyseErrorDetail": {"code": "46003", "language": 1},
        "/api/render/transfer/getConfig": {},
        "/api/render/transfer/getServerInfo": {"zone": 1},
        "/api/render/transfer/getRaySyncUserKey": {},
    }


# Signed routes that take one of the caller's task (or frame) ids: another user's id must answer exactly
# like an id that does not exist. The others name no task: they only ever see the caller's own data
# (their answers are checked for alice's ids below) or are admin-only.
NO_TASK_ID = {
    "/api/render/setUp/queryUserProfile", "/api/render/setUp/queryUserSetting", "/api/render/transfer/getBid",
    "/api/render/common/queryPlatforms", "/api/render/handle/getTaskList/v2", "/api/render/handle/queryAllFrameStats",
    "/api/render/project/list", "/api/render/project/getList", "/api/render/project/add",
    "/api/render/project/delete", "/api/rayfarm/file/download", "/api/rayfarm/file/uploadInit",
    "/api/rayfarm/worker/list", "/api/rayfarm/worker/setMode", "/api/rayfarm/farm/summary",
    "/api/render/setUp/updateUserSetting", "/api/render/plugin/addUserPluginConfig",
    "/api/render/plugin/getUserPluginConfig", "/api/render/handle/operate/sdk/loginRecord",
    "/api/render/submit/queryAnalyseErrorDetail", "/api/render/transfer/getConfig",
    "/api/render/transfer/getServerInfo", "/api/render/transfer/getRaySyncUserKey",
    "/api/render/plugin/querySoftwareDetail", "/api/render/plugin/querySoftwareList",
    "/api/render/submit/getUserPackNodeInfo",
}


def native_calls(w: dict) -> dict[str, tuple[str, str, dict | None]]:
    """For every native route: (method, URL path, JSON body) that a node with the token could send."""
    return {
        "/v1/worker/register": ("POST", "/v1/worker/register", {"name": "intruder", "software": {"command": ""}}),
        "/v1/worker/lease": ("POST", "/v1/worker/lease", {"workerId": 1, "session": "s", "max": 5}),
        "/v1/worker/heartbeat": ("POST", "/v1/worker/heartbeat", {"workerId": 1, "session": "s", "running": []}),
        "/v1/worker/complete": ("POST", "/v1/worker/complete", {"workerId": 1, "session": "s", "leaseId": "l",
                                                                "result": "done"}),
        "/v1/worker/output/{lease_id}/{file_name}": ("PUT", "/v1/worker/output/lease/out.png", None),
        "/v1/worker/scene/{frame_id:int}": ("GET", f"/v1/worker/scene/{w['frame']}", None),
        "/v1/worker/input/{frame_id:int}/{index:int}": ("GET", f"/v1/worker/input/{w['frame']}/0", None),
    }


ID_FIELDS = {"taskId", "taskIds", "id", "ids", "frameId", "cloneOriginalId"}


NAME_FIELDS = {"editName": "nobody-has-this-env"}  # names of the caller's own things, and one nobody has


def with_unknown_ids(body: dict) -> dict:
    """The same body with every task or frame id replaced by one that does not exist (and every name of the
    caller's own things by one nobody has)."""
    return {key: ([UNKNOWN] * len(value) if isinstance(value, list) else UNKNOWN) if key in ID_FIELDS
            else NAME_FIELDS.get(key, value) for key, value in body.items()}


def alike(message: str, body: dict) -> str:
    """An answer's text with ids and the names the body gave (or the unknown ones) made alike."""
    for key, unknown in NAME_FIELDS.items():
        if key in body:
            message = message.replace(repr(body[key]), "NAME").replace(repr(unknown), "NAME")
    return re.sub(r"[0-9]+", "N", message)
