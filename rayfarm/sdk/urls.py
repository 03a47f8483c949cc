"""The Renderbus API paths the rayfarm SDK calls (the same as the official ``rayvision_api``)."""

from __future__ import annotations


class ApiUrl:
    """Paths of the Renderbus-compatible API, named like the official SDK's ``ApiUrl`` members."""

    queryPlatforms = "/api/render/common/queryPlatforms"
    queryUserProfile = "/api/render/setUp/queryUserProfile"
    queryUserSetting = "/api/render/setUp/queryUserSetting"
    getBid = "/api/render/transfer/getBid"
    createTask = "/api/render/submit/createTask"
    task = "/api/render/submit/task"
    taskJsonFile = "/api/render/submit/taskJsonFile"
    getTaskList = "/api/render/handle/getTaskList/v2"
    stopTask = "/api/rendering/task/renderingTask/stopTask"
    startTask = "/api/rendering/task/renderingTask/startTask"
    abandonTask = "/api/render/handle/abandonTask"
    deleteTask = "/api/render/handle/deleteTask"
    queryTaskFrames = "/api/render/handle/queryTaskFrames"
    recommitTaskFrames = "/api/render/handle/recommitTaskFrames"
    stopTaskFrames = "/api/render/handle/stopTaskFrames"
    recommitTasks = "/api/render/handle/recommitTasks"
    loadingFrameThumbnail = "/api/render/handle/loadingFrameThumbnail"
    queryAllFrameStats = "/api/render/handle/queryAllFrameStats"
    queryTaskInfo = "/api/render/handle/queryTaskInfo/v2"
    updateTaskUserLevel = "/api/rendering/task/renderingTask/updateTaskUserLevel"
    setTaskOverTimeStop = "/api/render/handle/setTaskOverTimeStop"
    fullSpeedRendering = "/api/render/handle/fullSpeedRendering"
    updateTaskLimit = "/api/render/handle/updateTaskLimit"
    addTaskLabel = "/api/render/handle/addTaskLabel"
    deleteTaskLabel = "/api/render/handle/deleteTaskLabel"
    updateUserSetting = "/api/render/setUp/updateUserSetting"
    addUserPluginConfig = "/api/render/plugin/addUserPluginConfig"
    editUserPluginConfig = "/api/render/plugin/editUserPluginConfig"
    deleteUserPluginConfig = "/api/render/plugin/deleteUserPluginConfig"
    setDefaultUserPluginConfig = "/api/render/plugin/setDefaultUserPluginConfig"
    getUserPluginConfig = "/api/render/plugin/getUserPluginConfig"
    taskRecord = "/api/render/handle/operate/sdk/taskRecord"
    loginRecord = "/api/render/handle/operate/sdk/loginRecord"
    queryAnalyseErrorDetail = "/api/render/submit/queryAnalyseErrorDetail"
    getConfig = "/api/render/transfer/getConfig"
    getServerInfo = "/api/render/transfer/getServerInfo"
    getRaySyncUserKey = "/api/render/transfer/getRaySyncUserKey"


# Calls whose effect is NOT the same when repeated: never sent twice once they may have reached the farm.
NOT_IDEMPOTENT = frozenset({ApiUrl.createTask})


class FarmUrl:
    """rayfarm's own farm-level paths (signed like the Renderbus ones)."""

    workerList = "/api/rayfarm/worker/list"
    workerSetMode = "/api/rayfarm/worker/setMode"
    farmSummary = "/api/rayfarm/farm/summary"


def given(**fields: object) -> dict:
    """The optional fields of a request body that have a value (the API takes a missing field as "not given")."""
    return {name: value for name, value in fields.items() if value}
