"""Drive rayfarm's account routes with the unmodified official SDK (rayvision_api==3.0.4.3, and for the "sync"
scenario rayvision_sync==3.1.8).

Run with the interpreter of the SDK's own virtual environment (it cannot import rayfarm):

    python official_accounts_flow.py SCENARIO

Environment: RAYFARM_DOMAIN (host:port), RAYFARM_USER_ID / RAYFARM_USER_KEY, RAYFARM_TASK_JSON (a task.json
whose scene is on the farm and whose software_config names no cg_version). Prints one JSON object with what
each step answered; the test asserts it.

Scenarios: "accounts" (user settings, render environments, a submit that takes the default environment's
version, error hints, the transfer routes, the audit trail's pages), "sync" (the official RayvisionUpload and
RayvisionDownload constructors, and what an Aspera upload does then).
"""

import json
import logging
import os
import sys
import time

from rayvision_api import RayvisionAPI
from rayvision_api.exception import RayvisionAPIError

DOMAIN = os.environ["RAYFARM_DOMAIN"]


def quiet_logger():
    logger = logging.Logger("rayfarm-test-official-accounts")
    logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.WARNING)
    return logger


def client():
    return RayvisionAPI(access_id=os.environ["RAYFARM_USER_ID"], access_key=os.environ["RAYFARM_USER_KEY"],
                        domain=DOMAIN, platform="2", protocol="http", logger=quiet_logger())


def refused(call, *args):
    """Run a call that must fail; its error as a dict (the official SDK retries it 5 times first)."""
    try:
        answer = call(*args)
    except RayvisionAPIError as exc:
        return {"error_code": exc.error_code, "error": exc.error}
    return {"unexpected_success": answer}


def env(name, version, system):
    return {"cgId": 2007, "cgName": "Blender", "cgVersion": version, "renderLayerType": 0, "editName": name,
            "renderSystem": system, "pluginIds": []}


def accounts():
    out = {}
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 1))
    api = client()  # queryUserProfile, queryUserSetting, getBid: a sign-in record
    out["login_over_time"] = api.user_info.get("task_over_time")

    out["update_settings"] = api.user.update_user_settings(5400)
    out["settings"] = api.user.query_user_setting()

    out["add_lookdev"] = api.env.add_render_env(env("lookdev", "3.3", 0))
    out["add_windows"] = api.env.add_render_env(env("windows-old", "2.93", 1))
    out["add_twice"] = refused(api.env.add_render_env, env("lookdev", "3.4", 0))
    out["update_lookdev"] = api.env.update_render_env(env("lookdev", "3.4", 0))
    out["set_default"] = api.env.set_default_render_env("lookdev")
    out["linux_envs"] = api.env.get_render_env(cg_names=["blender"], os_name=0)
    out["windows_envs"] = api.env.get_render_env()  # the SDK's default: osName 1 (Windows)
    out["delete_windows"] = api.env.delete_render_env("windows-old")
    out["windows_after_delete"] = api.env.get_render_env()

    task_id = api.task.create_task(count=1)["taskIdList"][0]
    api.transmit.upload_json_content(task_id, os.environ["RAYFARM_TASK_JSON"])
    out["task_id"] = task_id
    out["submit"] = api.submit(task_id)

    out["hint_camera"] = api.query.error_detail(code="46003")
    out["hints_step_and_unknown"] = api.query.error_detail(codes=["46001", "99999"], language=1)
    out["hint_unknown"] = api.query.error_detail(code="99999")

    out["transfer_config"] = api.transmit.get_transfer_config()
    out["server_info"] = api.query.get_transfer_server_msg()
    out["raysync_key"] = api.query.get_raysync_user_key()

    out["task_record"] = api.user.task_record(pageNum=1, pageSize=100, startDate=started)
    out["task_record_page_2"] = api.user.task_record(pageNum=2, pageSize=3)
    out["task_record_tomorrow"] = api.user.task_record(
        startDate=time.strftime("%Y-%m-%d", time.localtime(time.time() + 86400)))
    out["login_record"] = api.user.login_record(pageSize=100)
    return out


def sync():
    from rayvision_sync.download import RayvisionDownload
    from rayvision_sync.upload import RayvisionUpload

    out = {}
    api = client()
    upload = RayvisionUpload(api, logger=quiet_logger())
    download = RayvisionDownload(api, logger=quiet_logger())
    out["constructed"] = [type(upload).__name__, type(download).__name__]
    out["user_id"] = upload.trans.user_id
    started = time.monotonic()
    try:
        upload.upload_asset(os.environ["RAYFARM_UPLOAD_JSON"], engine_type="aspera")
        out["aspera_upload"] = "no error"
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out["aspera_upload"] = f"{type(exc).__name__}: {exc}"
    out["aspera_seconds"] = time.monotonic() - started
    return out


if __name__ == "__main__":
    scenario = sys.argv[1] if len(sys.argv) > 1 else "accounts"
    print(json.dumps({"accounts": accounts, "sync": sync}[scenario](), default=str))
