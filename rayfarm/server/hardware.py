"""What the farm offers, in the Renderbus shapes RayvisionCheck reads: software versions, hardware configs
(node pools: one per worker tag, plus "Default", any node), the pools a user may use, and moving a task
to another pool.

Everything is read from the nodes seen lately (``store/pools.py``), so the official check tells a
customer before submitting that no node has the Blender version asked for.
"""

import re
import time
from typing import Annotated

from pydantic import BeforeValidator, Field

from rayfarm.domain.software import matches
from rayfarm.domain.taskjson import BLENDER_CG_ID, COMMAND_CG_ID
from rayfarm.server import models as m
from rayfarm.server.farm import Farm
from rayfarm.server.renderbus import Route
from rayfarm.store import pools
from rayfarm.store import tasks as task_store
from rayfarm.store.users import User

# software a node offers -> (cgId, cgName, cgType: the scene file extensions)
SOFTWARE = {"blender": (BLENDER_CG_ID, "Blender", "blend"), "command": (COMMAND_CG_ID, "command", "")}
# rayfarm does not choose nodes by memory or GPU count: every hardware config carries the values the official
# examples ask for (a check asking for others is told which are allowed)
RAM = "128GB"
GPU_NUM = None
# platforms the official check may compare with: the analyser's default ("2") besides the farm's and the caller's
ANALYSER_PLATFORM = 2


def _hardware_id(value):
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not re.fullmatch(r"[0-9]{1,10}", text) or not 1 <= int(text) <= 2**31 - 1:
        raise ValueError(f"{ascii(str(value)[:20])} is not a hardware config id (see hardwareConfig/list)")
    return int(text)


HardwareId = Annotated[int, BeforeValidator(_hardware_id)]
Label = Annotated[str, Field(max_length=64)]


class SoftwareDetail(m.Body):
    cgId: Annotated[int, BeforeValidator(m._no_bool), Field(ge=0, le=100_000)]
    osName: Annotated[str, Field(pattern="^(windows|linux)$")] | None = None


class HardwareList(m.Body):
    cloneTask: Annotated[str, Field(max_length=16)] | bool | None = None
    taskIds: Annotated[list[m.TaskId], Field(max_length=1000)] | None = None


class EditHardware(m.Body):
    taskIds: m.TaskIds
    hardwareConfigIds: Annotated[list[HardwareId], Field(max_length=100)]
    model: Label | None = None
    gpuNum: Label | None = None
    ram: Label | None = None


def version_forms(version: str) -> list[str]:
    """The versions a node with ``version`` is listed under, as task.json writes them: ``"3.4.1"`` → ``["3.4",
    "3.4.1"]`` (a major version alone is not one Renderbus lists); [] for an empty version."""
    parts = [part for part in version.strip().split(".") if part]
    forms = [".".join(parts[:n]) for n in range(min(2, len(parts)), len(parts) + 1)]
    return [form for form in forms if form and matches(form, version)]


def _version_key(version: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.split("."))


def _offered(farm: Farm, user: User) -> tuple[dict[str, list[str]], list[dict]]:
    """{software: versions in task.json's forms} the caller may use, and the pools."""
    with farm.db.read() as conn:
        software, listed = pools.offered(conn, time.time())
    versions = {}
    for name, found in software.items():
        if name not in SOFTWARE or (name == "command" and not user.allow_commands):
            continue
        forms = {form for version in found for form in version_forms(version)}
        versions[name] = sorted(forms, key=_version_key) or [""]
    return versions, listed


def software_detail(farm: Farm, user: User, body: SoftwareDetail, ctx) -> dict:
    """``plugin/querySoftwareDetail``: the versions of one software (every node's, whatever ``osName``: nodes run Linux)."""
    versions, _ = _offered(farm, user)
    for name, (cg_id, cg_name, _) in SOFTWARE.items():
        if cg_id == body.cgId and name in versions:
            items = [{"id": index, "cgId": cg_id, "cgName": cg_name, "cgVersion": version}
                     for index, version in enumerate(versions[name], start=1)]
            return {"cgPlugin": [], "cgVersion": items}
    return {"cgPlugin": [], "cgVersion": []}


def software_list(farm: Farm, user: User, body, ctx) -> dict:
    """``plugin/querySoftwareList``: the software the farm's nodes offer (``command`` only to users allowed to run it)."""
    versions, _ = _offered(farm, user)
    items = [{"cgId": SOFTWARE[name][0], "cgName": SOFTWARE[name][1], "cgType": SOFTWARE[name][2],
              "isSupportLinux": 1, "isSupportWindows": 0, "cgVersions": versions[name]}
             for name in SOFTWARE if name in versions]
    return {"isAutoCommit": 2, "defaultCgId": BLENDER_CG_ID, "renderInfoList": items}


def _platforms(farm: Farm, ctx) -> list[int]:
    found = {int(farm.settings.platform), ANALYSER_PLATFORM}
    caller = str(ctx.platform or "").strip()
    if caller.isdigit() and int(caller) < 10_000:
        found.add(int(caller))
    return sorted(found)


def _config(pool: dict, platform: int) -> dict:
    return {"id": pool["id"], "model": pool["model"], "ram": RAM, "gpuNum": GPU_NUM, "platform": platform,
            "status": 1 if pool["nodes"] else 0, "notSupportCgId": [], "notSupportCode": [],
            "notSupportCgVersions": [], "notSupportPluginList": [], "tag": pool["tag"], "nodes": pool["nodes"]}


def hardware_list(farm: Farm, user: User, body: HardwareList, ctx) -> list[dict]:
    """``hardwareConfig/list``: one config per pool and platform; with ``taskIds``, only the pools those tasks use."""
    with farm.db.read() as conn:
        _, listed = pools.offered(conn, time.time())
        if body.taskIds:
            rows = task_store.owned(conn, user, body.taskIds, lock=False)  # 937 for ids that are not the caller's
            used = {tag for row in rows.values() for tag in (row.pool_tags or [None])}
            known = {pool["tag"] for pool in listed}
            listed = [pool for pool in listed if pool["tag"] in used]
            listed += [{"id": pool_id, "model": tag, "tag": tag, "nodes": 0}
                       for pool_id, tag in pools.ids_of(conn, sorted(t for t in used if t and t not in known))]
    return [_config(pool, platform) for pool in listed for platform in _platforms(farm, ctx)]


def edit_hardware(farm: Farm, user: User, body: EditHardware, ctx) -> None:
    """``handle/editTaskHardwareConfig``: the tasks render only in these pools from their next chunk on (running
    chunks finish where they are). The ids decide; with none, ``model`` names the pool ("Default": any node)."""
    with ctx.write() as conn:
        task_store.owned(conn, user, body.taskIds)  # another user's ids answer like unknown ones, before anything
        if body.hardwareConfigIds:
            tags = pools.resolve(conn, body.hardwareConfigIds)
        else:
            tags = pools.by_model(conn, body.model or "")
        task_store.change_settings(conn, user, body.taskIds, pool_tags=tags)


def pack_nodes(farm: Farm, user: User, body, ctx) -> list[dict]:
    """``submit/getUserPackNodeInfo``: the pools the caller's tasks may render on (every user may use every pool)."""
    _, listed = _offered(farm, user)
    return [{"packNodeId": pool["id"], "packName": pool["model"], "nodes": pool["nodes"]}
            for pool in listed if pool["nodes"]]


HARDWARE_ROUTES: dict[str, Route] = {
    "/api/render/plugin/querySoftwareDetail": Route(SoftwareDetail, software_detail, reads=True),
    "/api/render/plugin/querySoftwareList": Route(m.Empty, software_list, reads=True),
    "/api/render/hardwareConfig/list": Route(HardwareList, hardware_list, reads=True),
    "/api/render/handle/editTaskHardwareConfig": Route(EditHardware, edit_hardware, wakes=True),
    "/api/render/submit/getUserPackNodeInfo": Route(m.Empty, pack_nodes, reads=True),
}
