"""The account side of the Renderbus API: user settings, render environments, the audit trail's pages, error
hints and the transfer configuration the official upload and download classes ask for. Handlers are thin.

Render environments are the user's own named pairs of software and version (plus an OS); the default one fills
in the version of a task.json that names none, at submit (store/render_envs.py). The transfer routes answer
with rayfarm's own HTTP transfer: no Raysync or Aspera engine (``resqEngines`` is empty), so the official
constructors succeed and files move with ``rayfarm.compat.rayvision_sync``.
"""

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from rayfarm.domain import error_hints
from rayfarm.domain.taskjson import MAX_SECONDS, SOFTWARE
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server import models as m
from rayfarm.server.farm import Farm
from rayfarm.server.renderbus import Route, transfer_bid
from rayfarm.store import audit, render_envs, users
from rayfarm.store import tasks as task_store
from rayfarm.store.db import Conflict
from rayfarm.store.users import User

CG_IDS = {cg_id: name for name, cg_id in SOFTWARE.items()}
SmallInt = Annotated[m.Int, Field(ge=0, le=2**31 - 1)]
EnvName = Annotated[str, Field(min_length=1, max_length=128)]
DateText = Annotated[str, Field(max_length=32)]


def _software(cg_id: int) -> int:
    if cg_id not in CG_IDS:
        known = ", ".join(f"{i} ({render_envs.DISPLAY[n]})" for i, n in sorted(CG_IDS.items(), reverse=True))
        raise ValueError(f"{cg_id} is not software this farm renders; use {known}")
    return cg_id


def _no_plugins(ids: list[int]) -> list[int]:
    if ids:
        raise ValueError("this farm has no plugin catalogue (its nodes offer software and versions only), so no "
                         "plugin id is known; send an empty list")
    return ids


def _code_text(value):
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


CodeText = Annotated[str, BeforeValidator(_code_text), Field(min_length=1, max_length=16)]


class UserSetting(m.Body):
    taskOverTimeSec: Annotated[m.Int, Field(ge=0, le=MAX_SECONDS)]


class RenderEnv(m.Body):
    cgId: Annotated[m.Int, AfterValidator(_software)]
    cgName: Annotated[str, Field(min_length=1, max_length=64)]
    cgVersion: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z][0-9A-Za-z._+ -]*$")]
    editName: EnvName
    renderSystem: Annotated[m.Int, Field(ge=0, le=1)]  # 0 Linux, 1 Windows
    pluginIds: Annotated[list[SmallInt], Field(max_length=100), AfterValidator(_no_plugins)]
    renderLayerType: Annotated[m.Int, Field(ge=0, le=100)] | None = None
    projectPath: Annotated[str, Field(max_length=1024)] | None = None


class EditName(m.Body):
    editName: EnvName


class EnvQuery(m.Body):
    osName: Annotated[m.Int, Field(ge=0, le=1)] | None = None
    cgId: SmallInt | None = None
    cgIds: Annotated[list[SmallInt], Field(max_length=100)] | None = None


class Records(m.Body):
    pageNum: m.PageNum = 1
    pageSize: m.PageSize = 10
    startDate: DateText | None = None  # yyyy-MM-dd or yyyy-MM-dd HH:mm:ss, the farm's local time
    endDate: DateText | None = None  # inclusive: that whole day, or up to that second
    platform: m.Int | None = None  # sent by the official SDK; the farm has one platform
    allUsers: Annotated[m.Int, Field(ge=0, le=1)] = 0  # rayfarm: every user's records (administrators only)


class TaskRecords(Records):
    taskIds: Annotated[list[m.TaskId], Field(max_length=1000)] | None = None  # rayfarm: only records naming these


class ErrorDetail(m.Body):
    code: CodeText | None = None
    codes: Annotated[list[CodeText], Field(max_length=100)] | None = None
    language: Annotated[m.Int, Field(ge=0, le=1)] = 0  # 0 Chinese, 1 English: rayfarm answers English in both


class ServerInfo(m.Body):
    zone: Annotated[m.Int, Field(ge=1, le=2)] | None = None


# ---------------------------------------------------------------- settings

def update_user_setting(farm: Farm, user: User, body: UserSetting, ctx) -> None:
    with ctx.write() as conn:
        users.set_task_over_time(conn, user.id, body.taskOverTimeSec)


# ---------------------------------------------------------------- render environments

def _env(body: RenderEnv) -> render_envs.Env:
    software = CG_IDS[body.cgId]
    if body.cgName.strip().lower() != software:
        raise ApiError(Code.INVALID_PARAMETER, f"cgName {body.cgName[:40]!r} does not match cgId {body.cgId} "
                                               f"({render_envs.DISPLAY[software]}); send both for the same software.")
    return render_envs.Env(name=body.editName, cg_id=body.cgId, software=software, cg_version=body.cgVersion,
                           render_system=body.renderSystem, render_layer_type=body.renderLayerType,
                           project_path=body.projectPath)


def add_env(farm: Farm, user: User, body: RenderEnv, ctx) -> dict:
    env = _env(body)

    def add():
        with ctx.write() as conn:
            render_envs.add(conn, user, env)

    try:
        add()
    except Conflict:  # the same name added by a concurrent call: now it exists (600 says so)
        add()
    return {"editName": env.name}


def edit_env(farm: Farm, user: User, body: RenderEnv, ctx) -> None:
    env = _env(body)
    with ctx.write() as conn:
        render_envs.edit(conn, user, env)


def delete_env(farm: Farm, user: User, body: EditName, ctx) -> None:
    with ctx.write() as conn:
        render_envs.remove(conn, user, body.editName)


def default_env(farm: Farm, user: User, body: EditName, ctx) -> None:
    with ctx.write() as conn:
        render_envs.set_default(conn, user, body.editName)


def get_envs(farm: Farm, user: User, body: EnvQuery, ctx) -> list[dict]:
    cg_ids = list(body.cgIds or []) + ([body.cgId] if body.cgId is not None else [])
    with farm.db.read() as conn:
        rows = render_envs.listed(conn, user, render_system=body.osName, cg_ids=cg_ids or None)
    return [{"cgId": row.cg_id, "editName": row.name, "cgName": render_envs.DISPLAY[row.software],
             "cgVersion": row.cg_version, "osName": row.render_system, "renderLayerType": row.render_layer_type,
             "projectPath": row.project_path, "isDefault": int(bool(row.is_default)), "respUserPluginInfoVos": []}
            for row in rows]


# ---------------------------------------------------------------- the audit trail

def _moment(text: str | None, name: str, end: bool) -> float | None:
    """Epoch seconds of a date filter (None when empty); an end date includes its whole day (or second)."""
    if not text:
        return None
    for pattern, step in (("%Y-%m-%d %H:%M:%S", timedelta(seconds=1)), ("%Y-%m-%d", timedelta(days=1))):
        try:
            moment = datetime.strptime(text, pattern)
            return (moment + step if end else moment).timestamp()
        except (ValueError, OverflowError, OSError):
            continue
    raise ApiError(Code.INVALID_PARAMETER, f"{name} {text[:32]!r} is not a date; write it as yyyy-MM-dd or "
                                           f"yyyy-MM-dd HH:mm:ss.")


def _whose(user: User, body: Records) -> int | None:
    """Whose records a page shows: the caller's own; everyone's for an administrator who asks (allUsers 1)."""
    if body.allUsers != 1:
        return user.id
    if not user.is_admin:
        raise ApiError(Code.FORBIDDEN, "Only a farm administrator may read every user's records (allUsers 1); "
                                       "leave allUsers out to read your own.")
    return None


def task_records(farm: Farm, user: User, body: TaskRecords, ctx) -> dict:
    whose = _whose(user, body)
    start, end = _moment(body.startDate, "startDate", False), _moment(body.endDate, "endDate", True)
    with farm.db.read() as conn:
        if body.taskIds and whose is not None:
            task_store.owned(conn, user, body.taskIds, lock=False)  # someone else's task answers like none (937)
        return audit.call_page(conn, user_id=whose, page_num=body.pageNum, page_size=body.pageSize, start=start,
                               end=end, task_ids=body.taskIds)


def login_records(farm: Farm, user: User, body: Records, ctx) -> dict:
    whose = _whose(user, body)
    start, end = _moment(body.startDate, "startDate", False), _moment(body.endDate, "endDate", True)
    with farm.db.read() as conn:
        return audit.login_page(conn, user_id=whose, page_num=body.pageNum, page_size=body.pageSize, start=start,
                                end=end)


# ---------------------------------------------------------------- error hints

def error_detail(farm: Farm, user: User, body: ErrorDetail, ctx) -> list[dict]:
    codes = ([body.code] if body.code else []) + list(body.codes or [])
    if not codes:
        raise ApiError(Code.MISSING_PARAMETER, "Give code (one code, e.g. \"46003\") or codes (a list of codes).")
    return error_hints.details(codes, body.language)


# ---------------------------------------------------------------- transfer

TRANSFER_NOTE = ("Files move over rayfarm's own HTTP API, signed like every call: use rayfarm.compat.rayvision_sync "
                 "in place of rayvision_sync. The Raysync and Aspera transmitters are not part of rayfarm, so no "
                 "transfer engine is listed.")


def _http_transfer(ctx) -> dict:
    return {"protocol": "http", "host": ctx.host, "uploadInit": "/api/rayfarm/file/uploadInit",
            "upload": "/v1/upload/{uploadId}", "download": "/api/rayfarm/file/download",
            "outputFiles": "/api/render/file/operate/getOutputUserDirFile", "client": "rayfarm.compat.rayvision_sync"}


def transfer_config(farm: Farm, user: User, body, ctx) -> dict:
    bids = transfer_bid(farm, user, body, ctx)
    return {"inputBid": bids["input_bid"], "outputBid": bids["output_bid"], "configBid": bids["config_bid"],
            "resqEngines": [], "transferMode": "http", "rayfarmTransfer": _http_transfer(ctx),
            "transferNote": TRANSFER_NOTE}


def transfer_server(farm: Farm, user: User, body: ServerInfo, ctx) -> dict:
    return {"raysyncTransfer": None, "asperaTransfer": None, "rayfarmTransfer": _http_transfer(ctx),
            "transferNote": TRANSFER_NOTE}


def raysync_key(farm: Farm, user: User, body, ctx) -> dict:
    return {"raySyncUserKey": "", "userName": user.name, "platform": int(farm.settings.platform),
            "transferMode": "http", "transferNote": TRANSFER_NOTE}


ACCOUNT_ROUTES: dict[str, Route] = {
    "/api/render/setUp/updateUserSetting": Route(UserSetting, update_user_setting),
    "/api/render/plugin/addUserPluginConfig": Route(RenderEnv, add_env),
    "/api/render/plugin/editUserPluginConfig": Route(RenderEnv, edit_env),
    "/api/render/plugin/deleteUserPluginConfig": Route(EditName, delete_env),
    "/api/render/plugin/setDefaultUserPluginConfig": Route(EditName, default_env),
    "/api/render/plugin/getUserPluginConfig": Route(EnvQuery, get_envs, reads=True),
    "/api/render/handle/operate/sdk/taskRecord": Route(TaskRecords, task_records, reads=True),
    "/api/render/handle/operate/sdk/loginRecord": Route(Records, login_records, reads=True),
    "/api/render/submit/queryAnalyseErrorDetail": Route(ErrorDetail, error_detail, reads=True),
    "/api/render/transfer/getConfig": Route(m.Empty, transfer_config, reads=True),
    "/api/render/transfer/getServerInfo": Route(ServerInfo, transfer_server, reads=True),
    "/api/render/transfer/getRaySyncUserKey": Route(m.Empty, raysync_key, reads=True),
}
