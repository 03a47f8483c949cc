"""The account side of the Renderbus API against a real server: user settings, render environments (and the
default one applied at submit, checked against the versions nodes have), error hints, the transfer routes and
the audit trail — driven by the unmodified official SDK in its own venv, by rayfarm's SDK, by the dashboard's
API and by `rayfarm task history`.
"""

import inspect
import json
import os
import subprocess
import time
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from rayfarm.sdk import RayfarmAPI, RayfarmAPIError
from tests.support import taskjson
from tests.support.farms import running_farm
from tests.support.processes import PYTHON
from tests.support.signed import Raw, check_envelope
from tests.support.taskjson import SCENE

SCRIPT = Path(__file__).with_name("official_accounts_flow.py")
WEB = {"X-Rayfarm-Web": "1"}
BLENDER = {"cgId": 2007, "cgName": "Blender", "renderSystem": 0, "pluginIds": []}


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "accounts")


@pytest.fixture(scope="module")
def users(farm):
    made = {name: farm.create_user(name, *flags) for name, flags in
            (("alice", ()), ("bob", ()), ("carol", ()), ("root", ("--admin",)))}
    for user in made.values():
        farm.input_file(user, SCENE)
    return made


@pytest.fixture(scope="module")
def node(farm):
    """A render node (the native API by hand) offering Blender 3.4.1: it registers before any submit here."""
    http = httpx.Client(base_url=farm.url, timeout=30, headers={"Authorization": f"Bearer {farm.worker_token()}"})
    answer = http.post("/v1/worker/register", json={"name": "blender-341", "software": {"blender": "3.4.1"}}).json()
    http.headers.update({"X-Worker-Id": str(answer["workerId"]), "X-Worker-Session": answer["session"]})

    def lease() -> list[dict]:
        return http.post("/v1/worker/lease", json={"workerId": answer["workerId"], "session": answer["session"],
                                                   "max": 5}).json()["leases"]

    yield lease
    http.close()


def sdk(farm, user) -> RayfarmAPI:
    return RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)


def unversioned_task_json() -> dict:
    task = taskjson.blender(frames="1-1[1]")
    task["software_config"]["cg_version"] = ""
    return task


def run_official(python: Path, farm, user, scenario: str, **extra: str) -> dict:
    env = {**os.environ, "RAYFARM_DOMAIN": farm.domain, "RAYFARM_USER_ID": user.access_id,
           "RAYFARM_USER_KEY": user.access_key, "RAYFARM_TASK_JSON": json.dumps(unversioned_task_json()),
           "PYTHONDONTWRITEBYTECODE": "1", **extra}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(python), "-W", "ignore", str(SCRIPT), scenario], capture_output=True, text=True,
                          env=env, timeout=180, cwd=str(SCRIPT.parent))
    assert done.returncode == 0, f"official SDK flow failed:\n{done.stderr[-4000:]}\nserver log:\n{farm.log()[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the official SDK, unmodified


@pytest.fixture(scope="module")
def official(rayvision_python, farm, users, node):
    out = run_official(rayvision_python, farm, users["alice"], "accounts")
    out["leases"] = node()
    return out


def test_official_user_settings_are_stored_and_every_field_kept(official):
    assert official["login_over_time"] == 12  # the default before any update
    assert official["update_settings"] is None
    settings = official["settings"]
    assert settings["taskOverTimeSec"] == 5400 and settings["taskOverTime"] == 1.5
    assert settings["singleNodeRenderFrames"] == "1" and "maxActiveTasks" in settings and "storageBytes" in settings


def test_official_render_environments(official):
    assert official["add_lookdev"] == {"editName": "lookdev"} and official["add_windows"] == {"editName": "windows-old"}
    twice = official["add_twice"]
    assert twice["error_code"] == 600 and "lookdev" in twice["error"] and "editUserPluginConfig" in twice["error"]
    assert official["update_lookdev"] is None and official["set_default"] is None
    assert official["linux_envs"] == [{"cgId": 2007, "editName": "lookdev", "cgName": "Blender", "cgVersion": "3.4",
                                       "osName": 0, "renderLayerType": 0, "projectPath": None, "isDefault": 1,
                                       "respUserPluginInfoVos": []}]
    assert [(e["editName"], e["cgVersion"], e["isDefault"]) for e in official["windows_envs"]] == [("windows-old", "2.93", 0)]
    assert official["delete_windows"] is None and official["windows_after_delete"] == []


def test_official_submit_takes_the_default_environments_version(official):
    assert official["submit"] is True
    (lease,) = official["leases"]
    assert lease["taskId"] == official["task_id"]
    assert lease["render"]["cg_version"] == "3.4"  # task.json named none: the default environment's


def test_official_error_hints_mark_errors_and_warnings(official):
    (camera,) = official["hint_camera"]
    assert camera["code"] == "46003" and camera["type"] == 1 and "camera" in camera["desDescriptionEn"]
    assert camera["desDescriptionCn"] == camera["desDescriptionEn"]  # no Chinese translation: English in both
    assert [(h["code"], h["type"], h["languageFlag"]) for h in official["hints_step_and_unknown"]] == [("46001", 0, 1)]
    assert official["hint_unknown"] == []


def test_official_transfer_routes_name_rayfarms_http_transfer(official):
    config = official["transfer_config"]
    assert config["resqEngines"] == [] and config["inputBid"] == "10201" and config["transferMode"] == "http"
    assert config["rayfarmTransfer"]["client"] == "rayfarm.compat.rayvision_sync"
    assert "Raysync and Aspera" in config["transferNote"]
    assert official["server_info"]["raysyncTransfer"] is None
    assert official["server_info"]["rayfarmTransfer"]["uploadInit"] == "/api/rayfarm/file/uploadInit"
    assert official["raysync_key"]["raySyncUserKey"] == "" and official["raysync_key"]["userName"] == "alice"


def test_official_task_record_lists_the_flows_changes_newest_first(official, users):
    page = official["task_record"]
    calls = [(item["buttonName"], item["code"]) for item in page["items"]]
    # the refused add was tried 5 times by the official SDK (it retries every failure): each try is a record
    assert calls == [("task", 200), ("taskJsonFile", 200), ("createTask", 200), ("deleteUserPluginConfig", 200),
                     ("setDefaultUserPluginConfig", 200), ("editUserPluginConfig", 200)] + \
        [("addUserPluginConfig", 600)] * 5 + [("addUserPluginConfig", 200)] * 2 + [("updateUserSetting", 200)]
    assert page["total"] == len(calls)
    newest = page["items"][0]
    assert newest["taskIds"] == [official["task_id"]] and newest["channel"] == "sdk" and newest["ip"] == "127.0.0.1"
    assert newest["userName"] == "alice" and newest["accessId"] == users["alice"].access_id
    assert page["items"][-1]["detail"] == "taskOverTimeSec=5400"
    assert official["task_record_page_2"]["pageNum"] == 2 and len(official["task_record_page_2"]["items"]) == 3
    assert official["task_record_tomorrow"]["items"] == [] and official["task_record_tomorrow"]["total"] == 0
    logins = official["login_record"]["items"]
    assert logins and all(i["loginType"] == "sdk" and i["loginStatus"] == 1 and i["userName"] == "alice" for i in logins)


def test_official_upload_and_download_constructors_succeed(rayvision_sync_python, farm, users, tmp_path):
    scene = tmp_path / "shot.blend"
    scene.write_bytes(b"scene")
    upload_json = tmp_path / "upload.json"
    upload_json.write_text(json.dumps({"asset": [{"local": str(scene), "server": str(scene)}]}))
    out = run_official(rayvision_sync_python, farm, users["carol"], "sync", HOME=str(tmp_path),
                       RAYFARM_UPLOAD_JSON=str(upload_json))
    assert out["constructed"] == ["RayvisionUpload", "RayvisionDownload"]
    assert str(out["user_id"]) == str(users["carol"].user_id)
    # no Aspera line is listed: the official transmitter fails at once instead of retrying forever
    assert out["aspera_upload"] == "KeyError: 'aspera'", out


# ------------------------------------------------------------------ rayfarm's SDK


SURFACE = {"UserOperator": ("user", ["query_user_profile", "query_user_setting", "update_user_settings",
                                     "get_transfer_bid", "task_record", "login_record"]),
           "RenderEnvOperator": ("env", ["add_render_env", "update_render_env", "delete_render_env",
                                         "set_default_render_env", "get_render_env"]),
           "QueryOperator": ("query", ["error_detail", "get_transfer_server_msg", "get_raysync_user_key"]),
           "TransmitOperator": ("transmit", ["upload_json_content", "get_transfer_config"])}


REQUIRED = "<required>"


def _parameters(signature: inspect.Signature) -> list[list]:
    """(name, default) of the parameters that are not keyword-only (rayfarm's additions are)."""
    return [[p.name, REQUIRED if p.default is p.empty else p.default] for p in signature.parameters.values()
            if p.kind is not p.KEYWORD_ONLY and p.name != "self"]


def test_our_sdk_has_the_official_names_and_signatures(rayvision_python):
    """The official operators' methods, with the same parameters and defaults (rayfarm adds keyword-only ones)."""
    wanted = {cls: methods for cls, (_, methods) in SURFACE.items()}
    probe = ("import inspect, json; from rayvision_api import operators as o\n"
             f"wanted = {wanted!r}\n"
             f"print(json.dumps({{c: {{m: [[p.name, {REQUIRED!r} if p.default is p.empty else p.default] "
             "for p in inspect.signature(getattr(getattr(o, c), m)).parameters.values() if p.name != 'self'] "
             "for m in ms} for c, ms in wanted.items()}))")
    done = subprocess.run([str(rayvision_python), "-W", "ignore", "-c", probe], capture_output=True, text=True,
                          timeout=60, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    official = json.loads(done.stdout)
    with RayfarmAPI("AKx", "key", domain="127.0.0.1:9") as api:
        for cls, (attribute, methods) in SURFACE.items():
            for method in methods:
                ours = _parameters(inspect.signature(getattr(getattr(api, attribute), method)))
                assert ours == official[cls][method], (cls, method, ours, official[cls][method])


def test_our_sdk_drives_every_account_route(farm, users, node):
    with sdk(farm, users["bob"]) as api:
        assert api.user.update_user_settings(7200) is None
        assert api.user.query_user_setting()["taskOverTime"] == 2
        assert api.env.add_render_env({**BLENDER, "cgVersion": "3.4", "editName": "main"}) == {"editName": "main"}
        api.env.set_default_render_env("main")
        assert [e["editName"] for e in api.env.get_render_env(name="blender", os_name=0)] == ["main"]
        assert api.env.get_render_env(os_name=1) == []
        for call, args, code in [
            (api.env.delete_render_env, ("nope",), 404),
            (api.env.set_default_render_env, ("nope",), 404),
            (api.env.add_render_env, ({**BLENDER, "cgVersion": "3.4", "editName": "x", "pluginIds": [2703]},), 600),
            (api.env.add_render_env, ({**BLENDER, "cgId": 2000, "cgName": "Maya", "cgVersion": "2018",
                                       "editName": "x"},), 600),
            (api.env.add_render_env, ({**BLENDER, "cgName": "Maya", "cgVersion": "3.4", "editName": "x"},), 600),
            (api.env.update_render_env, ({**BLENDER, "cgVersion": "3.4", "editName": "nope"},), 404),
            (api.user.update_user_settings, (-1,), 600),
            (api.user.task_record, (1, 10, "yesterday"), 600),
        ]:
            with pytest.raises(RayfarmAPIError) as caught:
                call(*args)
            assert caught.value.code == code, (call, args, caught.value)
        with pytest.raises(RayfarmAPIError) as caught:
            api.user.task_record(all_users=True)
        assert caught.value.code == 403 and "administrator" in caught.value.message
        hints = api.query.error_detail(codes=["718", "937", "1"])
        assert [(h["code"], h["type"]) for h in hints] == [("718", 1), ("937", 1)]
        assert api.transmit.get_transfer_config()["resqEngines"] == []
        assert api.query.get_raysync_user_key()["userName"] == "bob"
        assert api.query.get_transfer_server_msg()["rayfarmTransfer"]["host"] == farm.domain
        logins = api.user.login_record()["items"]
        assert logins == []  # no queryUserProfile call yet (our SDK logs in lazily)
        api.login()
        assert [i["loginType"] for i in api.user.login_record()["items"]] == ["sdk"]


def test_submit_refuses_a_version_no_node_has_and_names_theirs(farm, users, node):
    with sdk(farm, users["bob"]) as api:
        task_id = api.task.create_task()["taskIdList"][0]
        task = taskjson.blender(frames="1-1[1]")
        task["software_config"]["cg_version"] = "2.81"
        api.task.upload_task_json(task_id, task)
        with pytest.raises(RayfarmAPIError) as caught:
            api.task.submit_task(task_id)
        assert caught.value.code == 600
        assert "Blender 2.81" in caught.value.message and "3.4.1" in caught.value.message
        assert api.query.task_info([task_id])["items"][0]["submitDate"] is None  # nothing was submitted
        task["software_config"]["cg_version"] = "3.4"  # matches the node's 3.4.1
        api.task.upload_task_json(task_id, task)
        api.task.submit_task(task_id)
        assert api.query.task_info([task_id])["items"][0]["submitDate"]


# ------------------------------------------------------------------ the audit trail after a sequence of calls


def _dashboard(farm, user) -> httpx.Client:
    http = httpx.Client(base_url=farm.url, timeout=30)
    answer = http.post("/web/signin", json={"accessId": user.access_id, "accessKey": user.access_key}, headers=WEB)
    assert answer.json()["code"] == 200, answer.text
    return http


def test_who_stopped_my_task(farm, users):
    carol = users["carol"]
    with sdk(farm, carol) as api, closing(_dashboard(farm, carol)) as web:
        task_id = api.task.create_task(task_user_level=60)["taskIdList"][0]
        api.task.upload_task_json(task_id, unversioned_task_json())
        api.task.submit_task(task_id)
        api.task.update_priority(task_id, 90)
        api.task.set_task_overtime_top([task_id], 1800)
        stop = check_envelope(web.post("/web/api/rendering/task/renderingTask/stopTask", json={"taskIds": [task_id]},
                                       headers=WEB))
        assert stop["code"] == 200, stop
        api.task.start_task([task_id])
        api.task.abort_task([task_id])
        with pytest.raises(RayfarmAPIError):
            api.task.start_task([task_id])  # an abandoned task cannot start: refused (718)
        refused = check_envelope(web.post("/web/api/rendering/task/renderingTask/startTask",
                                          json={"taskIds": [task_id]}, headers=WEB))
        assert refused["code"] == 718
        records = list(api.user.iter_task_records(page_size=3, task_ids=[task_id]))
    calls = [(r["buttonName"], r["channel"], r["code"]) for r in records]
    assert calls == [("startTask", "dashboard", 718), ("startTask", "sdk", 718), ("abandonTask", "sdk", 200),
                     ("startTask", "sdk", 200), ("stopTask", "dashboard", 200), ("setTaskOverTimeStop", "sdk", 200),
                     ("updateTaskUserLevel", "sdk", 200), ("task", "sdk", 200), ("taskJsonFile", "sdk", 200),
                     ("createTask", "sdk", 200)]
    stopped = next(r for r in records if r["buttonName"] == "stopTask")
    assert stopped["userName"] == "carol" and stopped["accessId"] == carol.access_id and stopped["ip"] == "127.0.0.1"
    assert stopped["taskIds"] == [task_id] and stopped["taskType"] == "renderingTask"
    assert "abandoned" in records[0]["message"] and records[0]["result"] == "refused"
    assert next(r for r in records if r["buttonName"] == "updateTaskUserLevel")["detail"] == "taskUserLevel=90"
    times = [r["createTimeMs"] for r in records]
    assert times == sorted(times, reverse=True)

    # the command line shows the same records
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAYFARM_")}
    env.update(RAYFARM_SERVER=farm.url, RAYFARM_ACCESS_ID=carol.access_id, RAYFARM_ACCESS_KEY=carol.access_key,
               XDG_CONFIG_HOME=str(farm.data_dir.parent / "xdg"), PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([PYTHON, "-m", "rayfarm", "task", "history", str(task_id), "--json"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["taskId"] == task_id and [r["id"] for r in shown["items"]] == [r["id"] for r in records]
    table = subprocess.run([PYTHON, "-m", "rayfarm", "task", "history", str(task_id)], capture_output=True, text=True,
                           env={**env, "COLUMNS": "200"}, timeout=60)
    assert table.returncode == 0 and "stopTask" in table.stdout and "dashboard" in table.stdout


def test_records_are_the_callers_own_and_admins_see_everyones(farm, users):
    alice, bob, root = users["alice"], users["bob"], users["root"]
    with sdk(farm, alice) as as_alice, sdk(farm, bob) as as_bob, sdk(farm, root) as as_root:
        alice_task = as_alice.query.get_task_list()["items"][0]["id"]
        with pytest.raises(RayfarmAPIError) as caught:
            as_bob.user.task_record(task_ids=[alice_task])
        with pytest.raises(RayfarmAPIError) as unknown:
            as_bob.user.task_record(task_ids=[1_999_999_999])
        assert caught.value.code == unknown.value.code == 937
        assert {r["userName"] for r in as_bob.user.iter_task_records()} == {"bob"}
        everyone = {r["userName"] for r in as_root.user.iter_task_records(all_users=True)}
        assert {"alice", "bob", "carol"} <= everyone
        assert as_root.user.task_record(task_ids=[alice_task], all_users=True)["total"] >= 2
        assert {r["userName"] for r in as_root.user.login_record(pageSize=1000, all_users=True)["items"]} >= \
            {"alice", "carol"}


def test_dashboard_sign_ins_are_recorded_refused_ones_too(farm, users):
    bob = users["bob"]
    with httpx.Client(base_url=farm.url, timeout=30) as http:
        wrong = http.post("/web/signin", json={"accessId": bob.access_id, "accessKey": "wrong"}, headers=WEB).json()
        assert wrong["code"] == 602
        nobody = http.post("/web/signin", json={"accessId": "AKnobody", "accessKey": "x"}, headers=WEB).json()
        assert nobody["code"] == 602
    _dashboard(farm, bob).close()
    with sdk(farm, bob) as api, sdk(farm, users["root"]) as admin:
        latest = api.user.login_record(pageSize=2)["items"]
        assert [(i["loginType"], i["loginStatus"], i["code"]) for i in latest] == [("dashboard", 1, 200),
                                                                                   ("dashboard", 0, 602)]
        assert "wrong" in latest[1]["message"] and latest[1]["ip"] == "127.0.0.1"
        unknown = [i for i in admin.user.login_record(pageSize=1000, all_users=True)["items"]
                   if i["accessId"] == "AKnobody"]
        assert [(i["userId"], i["loginStatus"]) for i in unknown] == [(None, 0)]


def test_date_filters(farm, users):
    today, tomorrow = date.today(), date.today() + timedelta(days=1)
    with sdk(farm, users["carol"]) as api:
        everything = api.user.task_record(pageSize=1000)["total"]
        assert everything > 0
        assert api.user.task_record(pageSize=1000, startDate=str(today), endDate=str(today))["total"] == everything
        assert api.user.task_record(startDate=str(tomorrow))["total"] == 0
        assert api.user.task_record(endDate=str(today - timedelta(days=1)))["total"] == 0
        now = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + 2))
        assert api.user.task_record(pageSize=1000, endDate=now)["total"] == everything
        for bad in ("2024-13-01", "today", "2024-01-01T00:00:00"):
            with pytest.raises(RayfarmAPIError) as caught:
                api.user.task_record(startDate=bad)
            assert caught.value.code == 600 and "yyyy-MM-dd" in caught.value.message


def test_bad_input_on_the_new_routes_is_a_code_and_a_sentence(farm, users):
    raw = Raw(farm, users["bob"])
    try:
        cases = [
            ("/api/render/setUp/updateUserSetting", {}, 601),
            ("/api/render/setUp/updateUserSetting", {"taskOverTimeSec": True}, 600),
            ("/api/render/setUp/updateUserSetting", {"taskOverTimeSec": 10**12}, 600),
            ("/api/render/plugin/addUserPluginConfig", {**BLENDER, "cgVersion": "3.4", "editName": "x" * 129}, 600),
            ("/api/render/plugin/addUserPluginConfig", {**BLENDER, "cgVersion": "3.4\x00", "editName": "n"}, 600),
            ("/api/render/plugin/addUserPluginConfig", {**BLENDER, "cgVersion": "../3", "editName": "n"}, 600),
            ("/api/render/plugin/addUserPluginConfig", {**BLENDER, "cgVersion": "3.4", "editName": "n",
                                                         "renderSystem": 2}, 600),
            ("/api/render/plugin/deleteUserPluginConfig", {"editName": ""}, 600),
            ("/api/render/plugin/getUserPluginConfig", {"osName": 3}, 600),
            ("/api/render/plugin/getUserPluginConfig", {"cgIds": ["x"]}, 600),
            ("/api/render/handle/operate/sdk/taskRecord", {"pageSize": 0}, 600),
            ("/api/render/handle/operate/sdk/taskRecord", {"taskIds": [0]}, 600),
            ("/api/render/handle/operate/sdk/loginRecord", {"endDate": "9999-99-99"}, 600),
            ("/api/render/submit/queryAnalyseErrorDetail", {"language": 0}, 601),
            ("/api/render/submit/queryAnalyseErrorDetail", {"codes": [[1]]}, 600),
            ("/api/render/transfer/getServerInfo", {"zone": 7}, 600),
        ]
        for path, body, code in cases:
            answer = raw.call(path, body)
            assert answer["code"] == code, (path, body, answer)
    finally:
        raw.close()
    assert "Traceback" not in farm.log()
