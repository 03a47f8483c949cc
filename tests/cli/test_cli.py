"""The `rayfarm` command line against a real farm started with `rayfarm up` (two render nodes, real Blender)."""

import json
import os
import tomllib

import httpx
from PIL import Image

from rayfarm.sdk import RayfarmAPI
from tests.support.processes import free_port

REFUSED, USAGE, UNREACHABLE, TASK_FAILED = 3, 2, 4, 5


def test_rayfarm_up_writes_a_local_profile_that_commands_use(farm):
    path = farm.config_home / "rayfarm" / "config.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    config = tomllib.loads(path.read_text())
    assert config["default"] == "local"
    assert config["profiles"]["local"] == {"server": farm.url, "access_id": farm.creds["accessId"],
                                           "access_key": farm.creds["accessKey"]}
    listed = farm.json("profile", "list")
    assert listed == [{"name": "local", "server": farm.url, "accessId": farm.creds["accessId"], "caCert": None,
                       "default": True}]
    assert farm.creds["accessKey"] not in json.dumps(listed)


def test_rayfarm_up_prints_the_dashboard_address_and_how_to_sign_in_there(farm):
    lines = farm.up_log.read_text(errors="replace").splitlines()
    assert f"Dashboard: {farm.url}/" in lines, lines
    after = lines[lines.index(f"Dashboard: {farm.url}/") + 1]
    assert f"sign in with access id {farm.creds['accessId']} and the access key above" in after, lines
    [key] = [line.split(":", 1)[1].strip() for line in lines if line.strip().startswith("access key:")]
    assert key == farm.creds["accessKey"]
    # what it says works: the page is served there, and the printed access id and key sign in to it
    with httpx.Client(base_url=f"{farm.url}/", timeout=30) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text[:200]
        answer = client.post("/web/signin", json={"accessId": farm.creds["accessId"], "accessKey": key},
                             headers={"X-Rayfarm-Web": "1"}).json()
        assert answer["code"] == 200 and answer["data"]["userName"] == farm.creds["userName"], answer


def test_submit_reads_the_scene_with_blender_waits_and_downloads_real_images(farm, scene, tmp_path):
    target = tmp_path / "out"
    done = farm.ok("submit", scene, "--wait", "--download", target, "--json", "--interval", "0.3", "--label", "cli")
    result = json.loads(done.stdout)  # nothing but the JSON on stdout: the bars and messages are on stderr
    task_id = result["taskId"]
    assert result["state"] == "done" and result["doneFrames"] == 2 and result["failedFrames"] == 0, done.stderr
    assert result["frames"] == "1-2[1]"  # read from the scene by Blender: no --frames was given
    assert sorted(os.path.basename(p) for p in result["downloaded"]) == ["shot_0001.png", "shot_0002.png"]
    assert result["files"] == [str(scene), str(scene.parent / "tex" / "flat.png")]  # the texture, found by Blender
    for path in result["downloaded"]:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (64, 36), (path, image.format, image.size)
            red, green, blue = image.convert("RGB").getpixel((32, 18))
            assert green > 120 and red < 60 and blue < 60, (path, red, green, blue)  # not Blender's missing pink

    shown = farm.json("task", "show", task_id)
    assert shown["state"] == "done" and shown["taskStatus"] == 25
    assert shown["framesRange"] == "1-2[1]" and shown["totalFrames"] == 2 and shown["doneFrames"] == 2
    assert shown["software"] == "blender" and shown["labels"] == ["cli"]

    listed = farm.json("task", "list", "--state", "done", "--search", "shot")
    assert task_id in [item["id"] for item in listed["items"]] and listed["total"] >= 1
    assert all(item["state"] == "done" for item in listed["items"])

    frames = farm.json("task", "frames", task_id)
    assert frames["total"] == 2 and [f["frameIndex"] for f in frames["items"]] == ["1", "2"]
    assert all(f["state"] == "done" and f["nodeName"] for f in frames["items"]), frames

    log = farm.ok("task", "log", task_id, "2").stdout
    assert "Saved:" in log and "shot_0002.png" in log


def test_failed_render_exit_code_log_and_retry(farm, scene):
    # an image format Blender does not know: the farm takes the task, the node fails its chunk
    done = farm.run("submit", scene, "--frames", "1", "--no-assets", "--format", "NOPE", "--attempts", "1",
                    "--wait", "--json", "--interval", "0.3")
    assert done.returncode == TASK_FAILED, done.stderr
    result = json.loads(done.stdout)
    task_id = result["taskId"]
    assert result["state"] == "failed" and result["failedFrames"] == 1
    assert f"rayfarm task retry {task_id}" in done.stderr  # what to do next

    assert "the output format 'NOPE' is not known to Blender" in farm.ok("task", "log", task_id, "1").stdout
    [failed] = farm.json("task", "frames", task_id, "--state", "failed")["items"]
    assert failed["frameIndex"] == "1" and failed["recommitFlag"] == 0

    assert "1 chunk(s)" in farm.ok("task", "retry", task_id).stdout
    [again] = farm.json("task", "frames", task_id)["items"]
    assert again["recommitFlag"] == 1  # rendered again (and, failing at once, it may already have failed again)
    watched = farm.run("task", "watch", task_id, "--json", "--interval", "0.3")
    assert watched.returncode == TASK_FAILED and json.loads(watched.stdout)["state"] == "failed"

    missing = farm.run("task", "retry", task_id, "--frame", "7")
    assert missing.returncode == USAGE and "has no frame 7" in missing.stderr
    # a camera that is not in the scene: Blender reads the scene and the command refuses before uploading
    checked = farm.run("submit", scene, "--camera", "Nope")
    assert checked.returncode == USAGE and "its cameras: Camera" in checked.stderr


def test_worker_disable_and_enable_and_task_operations(farm, scene):
    nodes = farm.json("worker", "list")
    names = sorted(node["name"] for node in nodes)
    assert len(names) == 2 and all(node["state"] in ("idle", "busy") for node in nodes)
    farm.ok("worker", "disable", *names)
    try:
        assert all(node["disabled"] for node in farm.json("worker", "list"))
        task_id = int(farm.ok("submit", scene, "--frames", "1-2", "--no-assets", "--level", "60").stdout)
        waiting = farm.json("task", "frames", task_id, "--state", "waiting")  # no enabled node takes them
        assert [f["frameIndex"] for f in waiting["items"]] == ["1", "2"]
        # chunks in two states: the farm filters them (queryTaskFrames status), the total counts the chosen ones
        with RayfarmAPI(farm.creds["accessId"], farm.creds["accessKey"], domain=f"127.0.0.1:{farm.port}") as api:
            assert api.task.stop_task_frames(task_id, [waiting["items"][1]["id"]]) == {"count": 1}
        stopped = farm.json("task", "frames", task_id, "--state", "stopped,failed")
        assert [f["frameIndex"] for f in stopped["items"]] == ["2"] and stopped["total"] == 1
        assert stopped["items"][0]["state"] == "stopped"
        assert [f["frameIndex"] for f in farm.json("task", "frames", task_id, "--state", "1")["items"]] == ["1"]
        assert f"task {task_id}: 1 chunk(s)" in farm.ok("task", "frames", task_id, "--state", "waiting").stdout

        farm.ok("task", "priority", task_id, "80")
        farm.ok("task", "limit", task_id, "1")
        farm.ok("task", "overtime", task_id, "1h30m")
        farm.ok("task", "stop", task_id)
        shown = farm.json("task", "show", task_id)
        assert (shown["state"], shown["taskUserLevel"], shown["taskLimit"], shown["overTimeStop"]) == \
            ("stopped", 80, 1, 5400)
        farm.ok("task", "start", task_id)
        farm.ok("task", "full-speed", task_id)  # allowed only when waiting or rendering: so it started
        farm.ok("task", "abort", task_id)

        unconfirmed = farm.run("task", "delete", task_id)
        assert unconfirmed.returncode == USAGE and "--yes" in unconfirmed.stderr
        farm.ok("task", "delete", task_id, "--yes")
        deleted = {item["id"]: item["state"] for item in farm.json("task", "list", "--deleted")["items"]}
        assert deleted[task_id] == "abandoned"

        farm.ok("worker", "drain", names[0])
        modes = {node["name"]: (node["disabled"], node["draining"]) for node in farm.json("worker", "list")}
        assert modes == {names[0]: (False, True), names[1]: (True, False)}  # drain replaces disable
    finally:
        farm.ok("worker", "enable", *names)
    assert not any(node["disabled"] or node["draining"] for node in farm.json("worker", "list"))


def test_exit_codes_for_refusals_profiles_and_unreachable_farms(farm, bob, tmp_path):
    # an artist who is not an administrator may list nodes but not change them: the farm's 403
    as_bob = {"RAYFARM_SERVER": farm.url, "RAYFARM_ACCESS_ID": bob["accessId"], "RAYFARM_ACCESS_KEY": bob["accessKey"]}
    name = farm.json("worker", "list", env=as_bob)[0]["name"]
    refused = farm.run("worker", "disable", name, env=as_bob)
    assert refused.returncode == REFUSED and "403" in refused.stderr and "administrator" in refused.stderr
    unknown = farm.run("task", "start", "999999")
    assert unknown.returncode == REFUSED and "error 937: Task 999999 does not exist" in unknown.stderr
    assert unknown.stdout == ""

    # profiles that do not exist, or a config file that is not TOML: usage errors that say what to do
    # (the other profile mistakes and the order of credentials: tests/cli/test_profiles.py, in-process)
    bad = farm.run("task", "list", "--profile", "nope")
    assert bad.returncode == USAGE and "no profile 'nope'" in bad.stderr and "rayfarm login" in bad.stderr
    broken = tmp_path / "broken"
    (broken / "rayfarm").mkdir(parents=True)
    (broken / "rayfarm" / "config.toml").write_text("[profiles.local\nserver = 1\n")
    bad = farm.run("task", "list", env={"XDG_CONFIG_HOME": str(broken)})
    assert bad.returncode == USAGE and "not valid TOML" in bad.stderr

    # nobody listens there
    gone = farm.run("task", "list", "--server", f"http://127.0.0.1:{free_port()}")
    assert gone.returncode == UNREACHABLE and "Could not connect" in gone.stderr
    bad_state = farm.run("task", "list", "--state", "bogus")
    assert bad_state.returncode == USAGE and "done-with-failures" in bad_state.stderr


def test_login_writes_a_private_profile_and_flags_env_and_profiles_combine(farm, bob, scene, tmp_path):
    home = {"XDG_CONFIG_HOME": str(tmp_path / "home")}
    path = tmp_path / "home" / "rayfarm" / "config.toml"
    wrong = farm.run("login", "--profile", "bob", "--server", farm.url, "--access-id", bob["accessId"],
                     "--access-key", "y" * 40, env=home)
    assert wrong.returncode == REFUSED and "611" in wrong.stderr  # checked with the farm before anything is saved
    assert not path.exists()

    farm.ok("login", "--profile", "bob", "--server", farm.url, "--access-id", bob["accessId"],
            "--access-key", bob["accessKey"], env=home)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    config = tomllib.loads(path.read_text())
    assert config["default"] == "bob" and config["profiles"]["bob"]["access_id"] == bob["accessId"]
    farm.ok("login", "--profile", "artist", "--server", farm.url, "--access-id", farm.creds["accessId"],
            "--access-key", farm.creds["accessKey"], env=home)
    assert set(tomllib.loads(path.read_text())["profiles"]) == {"bob", "artist"}

    # which user a command runs as: only bob sees his task (anyone else gets the farm's 937)
    # (its unknown format fails on a node at once: no render time spent on it)
    task_id = int(farm.ok("submit", scene, "--frames", "1", "--no-assets", "--format", "NOPE", env=home).stdout)

    def sees(*args: str, env: dict | None = None) -> bool:
        code = farm.run("task", "show", task_id, *args, env={**home, **(env or {})}).returncode
        assert code in (0, REFUSED)
        return code == 0

    as_artist = {"RAYFARM_SERVER": farm.url, "RAYFARM_ACCESS_ID": farm.creds["accessId"],
                 "RAYFARM_ACCESS_KEY": farm.creds["accessKey"]}
    assert sees()
    assert not sees(env=as_artist)  # the environment beats the default profile
    assert sees("--profile", "bob", env=as_artist)  # a profile named with --profile beats the environment
