"""Every public method of every rayvision_api operator, called once against a rayfarm farm.

Run with the interpreter of the official client's virtual environment:

    python official_methods_flow.py

The operators' methods (and properties) are enumerated with ``inspect``; ``CALLS`` gives each one its
arguments, in an order where each call makes sense (a task is created before it is stopped...). A method the
SDK has and ``CALLS`` lacks is reported, not skipped. Each HTTP answer is recorded (path, code, message), and
so is what the method returned or raised. The SDK retries a failed call 5 times 1-2 s apart; here it tries
once (the answer would be the same). Environment: RAYFARM_DOMAIN, RAYFARM_USER_ID, RAYFARM_USER_KEY,
RAYFARM_TASK (a task with a done frame), RAYFARM_FRAME (that frame's id), RAYFARM_POOL (a pool's model),
RAYFARM_COMMAND (a command task.json), RAYFARM_BLENDER (a Blender task.json for RayvisionCheck). Prints one
JSON object.
"""

import inspect
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from urllib.parse import urlparse

import rayvision_api.operators as operators
from rayvision_api import RayvisionAPI
from rayvision_api.connect import Connect
from rayvision_api.task.check import RayvisionCheck
from tenacity import stop_after_attempt

Connect.post.retry.stop = stop_after_attempt(1)

DONE_TASK = int(os.environ["RAYFARM_TASK"])
FRAME = int(os.environ["RAYFARM_FRAME"])
POOL = os.environ["RAYFARM_POOL"]
COMMAND = os.environ["RAYFARM_COMMAND"]
ENV = {"cgId": 2007, "cgName": "Blender", "cgVersion": "3.4", "renderLayerType": 0, "editName": "rayfarm-env",
       "renderSystem": 0, "pluginIds": []}


def new_task(api) -> int:
    """A submitted command task (its frames wait: no node leases them)."""
    task_id = api.task.create_task(count=1)["taskIdList"][0]
    api.transmit.upload_json_content(task_id, COMMAND)
    api.task.submit_task(task_id)
    return task_id


# (class, method) -> how to call it: w is the shared state ({"api", "t": a task to operate, "r": one for frames})
CALLS = [
    ("UserOperator", "info", lambda o, w: o.info),
    ("UserOperator", "user_id", lambda o, w: o.user_id),
    ("UserOperator", "query_user_profile", lambda o, w: o.query_user_profile()),
    ("UserOperator", "query_user_setting", lambda o, w: o.query_user_setting()),
    ("UserOperator", "get_transfer_bid", lambda o, w: o.get_transfer_bid()),
    ("UserOperator", "get_hardware_config", lambda o, w: o.get_hardware_config()),
    ("UserOperator", "update_user_settings", lambda o, w: o.update_user_settings(43200)),
    ("UserOperator", "task_record", lambda o, w: o.task_record()),
    ("UserOperator", "login_record", lambda o, w: o.login_record()),
    ("TagOperator", "add_label", lambda o, w: o.add_label("methods-project", 1)),
    ("TagOperator", "get_label_list", lambda o, w: o.get_label_list()),
    ("TagOperator", "get_project_list", lambda o, w: o.get_project_list()),
    ("TagOperator", "get_list", lambda o, w: o.get_list(flag=2)),
    ("TagOperator", "delete_label", lambda o, w: o.delete_label("methods-project")),
    ("TaskOperator", "create_task", lambda o, w: w.update(created=o.create_task(count=1, labels=["keep"])) or
     w["created"]),
    ("TransmitOperator", "upload_json_content",
     lambda o, w: o.upload_json_content(w["created"]["taskIdList"][0], COMMAND)),
    ("TaskOperator", "submit_task", lambda o, w: o.submit_task(w["created"]["taskIdList"][0])),
    ("TagOperator", "add_task_tag", lambda o, w: o.add_task_tag("extra", [w["created"]["taskIdList"][0]])),
    ("TagOperator", "delete_task_tag",
     lambda o, w: o.delete_task_tag([w["created"]["taskIdList"][0]], ["extra"])),
    ("TaskOperator", "task_id", lambda o, w: o.task_id),
    ("TaskOperator", "update_priority", lambda o, w: o.update_priority(w["created"]["taskIdList"][0], 60)),
    ("TaskOperator", "set_task_overtime_top",
     lambda o, w: o.set_task_overtime_top([w["created"]["taskIdList"][0]], 3600)),
    ("TaskOperator", "update_task_limit", lambda o, w: o.update_task_limit(w["created"]["taskIdList"][0], 2)),
    ("TaskOperator", "full_speed", lambda o, w: o.full_speed([w["created"]["taskIdList"][0]])),
    ("TaskOperator", "edit_task_hardware_config",
     lambda o, w: o.edit_task_hardware_config([w["created"]["taskIdList"][0]], [], POOL, "", "128GB")),
    ("TaskOperator", "stop_task", lambda o, w: o.stop_task([w["created"]["taskIdList"][0]])),
    ("TaskOperator", "start_task", lambda o, w: o.start_task([w["created"]["taskIdList"][0]])),
    ("TaskOperator", "abort_task", lambda o, w: o.abort_task([w["created"]["taskIdList"][0]])),
    ("TaskOperator", "delete_task", lambda o, w: o.delete_task([w["created"]["taskIdList"][0]])),
    ("QueryOperator", "platforms", lambda o, w: o.platforms()),
    ("QueryOperator", "error_detail", lambda o, w: o.error_detail(code="46003", language=1)),
    ("QueryOperator", "get_task_list", lambda o, w: o.get_task_list(page_num=1, page_size=10)),
    ("QueryOperator", "task_info", lambda o, w: o.task_info([DONE_TASK])),
    ("QueryOperator", "task_frames", lambda o, w: o.task_frames(DONE_TASK)),
    ("QueryOperator", "all_frame_status", lambda o, w: o.all_frame_status()),
    ("QueryOperator", "get_all_frames", lambda o, w: o.get_all_frames(DONE_TASK, end_page=3)),
    ("QueryOperator", "get_small_task_id", lambda o, w: o.get_small_task_id(DONE_TASK)),
    ("QueryOperator", "get_task_processing_img", lambda o, w: o.get_task_processing_img(DONE_TASK)),
    ("QueryOperator", "get_frame_thumbnall", lambda o, w: o.get_frame_thumbnall(FRAME)),
    ("QueryOperator", "get_render_log", lambda o, w: o.get_render_log(frame_id=FRAME)),
    ("QueryOperator", "supported_software", lambda o, w: o.supported_software()),
    ("QueryOperator", "supported_plugin", lambda o, w: o.supported_plugin("blender")),
    ("QueryOperator", "get_pack_node_info", lambda o, w: o.get_pack_node_info()),
    ("QueryOperator", "get_transfer_server_msg", lambda o, w: o.get_transfer_server_msg()),
    ("QueryOperator", "get_raysync_user_key", lambda o, w: o.get_raysync_user_key()),
    ("QueryOperator", "frame_number_to_stop",
     lambda o, w: o.frame_number_to_stop(w.setdefault("r", new_task(w["api"])), ["2"])),
    ("QueryOperator", "stop_frame", lambda o, w: o.stop_frame(w["r"], select_all=1)),
    ("QueryOperator", "restart_frame", lambda o, w: o.restart_frame(w["r"], select_all=1, status=[3])),
    ("QueryOperator", "get_custome_frames", lambda o, w: o.get_custome_frames(w["r"], ["1"])),
    ("QueryOperator", "restart_failed_frames", lambda o, w: o.restart_failed_frames([w["r"]], status=[3])),
    ("RenderEnvOperator", "add_render_env", lambda o, w: o.add_render_env(dict(ENV))),
    ("RenderEnvOperator", "update_render_env", lambda o, w: o.update_render_env(dict(ENV, cgVersion="3.4.1"))),
    ("RenderEnvOperator", "set_default_render_env", lambda o, w: o.set_default_render_env(ENV["editName"])),
    ("RenderEnvOperator", "get_render_env", lambda o, w: o.get_render_env(os_name=0)),
    ("RenderEnvOperator", "delete_render_env", lambda o, w: o.delete_render_env(ENV["editName"])),
    ("TransmitOperator", "get_transfer_config", lambda o, w: o.get_transfer_config()),
    ("TransmitOperator", "get_output_files", lambda o, w: o.get_output_files(task_id=DONE_TASK)),
]


def public_methods() -> list[tuple[str, str]]:
    """Every public method and property of every operator the SDK exports."""
    found = []
    for class_name in operators.__all__:
        cls = getattr(operators, class_name)
        for name, member in inspect.getmembers(cls):
            if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                found.append((class_name, name))
    return sorted(found)


class Recorder:
    """Wraps the SDK's requests session: every answer's path, code and message."""

    def __init__(self, session):
        self.session = session
        self.answers = []
        self._post = session.post
        session.post = self.post

    def post(self, url, *args, **kwargs):
        response = self._post(url, *args, **kwargs)
        try:
            payload = response.json()
        except ValueError:
            payload = {"code": None, "message": response.text[:200]}
        self.answers.append({"path": urlparse(url).path, "code": payload.get("code"),
                             "message": payload.get("message")})
        return response


def hardware_checks(api) -> dict:
    """The official RayvisionCheck.execute with a pool's model, with "Default", and with a model the farm lacks."""
    out = {}
    for name, model in (("pool", POOL), ("default", "Default"), ("unknown", "28C")):
        path = Path(os.environ["HOME"]) / f"check-{name}" / "task.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(os.environ["RAYFARM_BLENDER"])
        try:
            out[name] = {"result": RayvisionCheck(api).execute({"model": model, "ram": "128GB", "gpuNum": None},
                                                               str(path))}
        except Exception as exc:  # noqa: BLE001 - reported to the test
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        out[name]["hardwareConfigIds"] = json.loads(path.read_text())["task_info"].get("hardwareConfigIds")
    return out


def main():
    logger = logging.getLogger("official-methods")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    api = RayvisionAPI(access_id=os.environ["RAYFARM_USER_ID"], access_key=os.environ["RAYFARM_USER_KEY"],
                       domain=os.environ["RAYFARM_DOMAIN"], platform="2", protocol="http", logger=logger)
    recorder = Recorder(api.connect._session_request)
    operator_of = {type(o).__name__: o for o in (api.user, api.task, api.query, api.tag, api.env, api.transmit)}
    state = {"api": api}
    results = []
    for class_name, method, call in CALLS:
        before = len(recorder.answers)
        entry = {"method": f"{class_name}.{method}"}
        try:
            entry["result"] = call(operator_of[class_name], state)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["at"] = traceback.format_exc()[-1200:]
        entry["answers"] = recorder.answers[before:]
        results.append(entry)
    called = {(c, m) for c, m, _ in CALLS}
    return {"results": results, "checks": hardware_checks(api), "enumerated": [f"{c}.{m}" for c, m in public_methods()],
            "without_arguments": [f"{c}.{m}" for c, m in public_methods() if (c, m) not in called],
            "exported": sorted(operator_of)}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(), default=str) + "\n")
