"""A customer's script on the official SDK, with rayfarm's rayvision_sync drop-in, against a real farm and node.

The script (``official_sync_flow.py``) runs in the official client's own virtual environment (rayvision_api,
rayvision_sync, rayvision_utils, rayvision_blender as PyPI ships them) with rayfarm's repository on its
PYTHONPATH: createTask, ``upload_config`` of task.json and upload.json, ``upload_asset`` of a Blender scene
and its texture, submit, a real node renders, and the drop-in downloads the images.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.support import taskjson
from tests.support.blender import make_textured_scene
from tests.support.farms import running_farm

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("official_sync_flow.py")
IMAGES = ["shot_0001.png", "shot_0002.png"]


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "sync")


@pytest.fixture(scope="module")
def flow(rayvision_sync_python, farm, tmp_path_factory):
    user = farm.create_user("drop-in")
    farm.start_worker("sync-node", wait=False)
    work = tmp_path_factory.mktemp("customer")
    scene, texture = make_textured_scene(work / "proj" / "shot.blend")
    (work / "extra").mkdir()
    (work / "extra" / "notes.txt").write_text("not needed by the render\n")
    task_json = taskjson.blender(str(scene), frames="1-2[1]")
    task_json["software_config"]["cg_version"] = "3.4"
    task_json["scene_info"]["common"].update(width="64", height="64", Render_Format="PNG")
    (work / "task.json").write_text(json.dumps(task_json))
    # hand-written upload.json: "server" paths as rayfarm documents them (a leading "/")
    (work / "upload.json").write_text(json.dumps({"asset": [{"local": str(path), "server": str(path)}
                                                            for path in (scene, texture)]}))
    env = {**os.environ, "RAYFARM_DOMAIN": farm.domain, "RAYFARM_USER_ID": user.access_id,
           "RAYFARM_USER_KEY": user.access_key, "RAYFARM_WORK": str(work), "RAYFARM_DEADLINE": "60",
           "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(work)}
    done = subprocess.run([str(rayvision_sync_python), "-W", "ignore", str(SCRIPT)], capture_output=True, text=True,
                          env=env, timeout=150, cwd=str(work))
    assert done.returncode == 0, f"the customer script failed:\n{done.stderr[-4000:]}\nserver log:\n{farm.log()[-3000:]}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out.update(work=work, user=user, scene=scene, texture=texture)
    return out


def test_submodules_mirror_the_official_package(flow):
    assert flow["submodules"] is True


def test_transmitter_options_are_accepted_ignored_and_said_once(flow):
    notices = [line for line in flow["log"] if "files move over the farm's own HTTP" in line]
    assert len(notices) == 1 and "engine_type" in notices[0]  # one upload and one download object, one notice


def test_upload_config_sends_task_json_and_upload_json_and_skips_missing_files(flow):
    assert flow["upload_config"] == {"result": True}
    log = "\n".join(flow["log"])
    assert "tips.json is not exists" in log and "asset.json is not exists" in log
    assert f"-> task {flow['task_id']} task.json" in log and f"-> task {flow['task_id']} upload.json" in log


def test_upload_asset_puts_scene_and_texture_where_task_json_names_them(flow, farm):
    assert flow["upload_asset"] == {"result": True}
    assert flow["upload_asset_again"] == {"result": True}  # already there: nothing sent again
    stored = farm.data_dir / "storage" / str(flow["user"].user_id) / "input"
    for local in (flow["scene"], flow["texture"]):
        assert (stored / str(local).lstrip("/")).read_bytes() == local.read_bytes()


def test_official_upload_json_with_posix_server_paths_lands_at_the_local_path(flow, farm):
    notes = flow["work"] / "extra" / "notes.txt"
    [entry] = flow["official_upload_json"]["asset"]
    assert entry == {"local": str(notes), "server": str(notes)[1:]}  # the official form: no leading "/"
    assert flow["official_upload"] == {"result": True}
    stored = farm.data_dir / "storage" / str(flow["user"].user_id) / "input" / str(notes).lstrip("/")
    assert stored.read_text() == "not needed by the render\n"


def test_missing_upload_json_is_rayvision_error(flow):
    assert flow["missing_asset"]["error"].startswith("RayvisionError")
    assert "upload file is not exist" in flow["missing_asset"]["error"]


def test_submitted_task_renders_on_the_node(flow):
    assert flow["submit"] == {"result": True}
    item = flow["item"]
    assert item["taskStatus"] == 25, item
    assert item["outputFileName"] == f"{flow['task_id']}_shot"


def _check_image(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (64, 64), (path, image.format, image.size)
        red, green, blue = image.convert("RGB").getpixel((32, 32))
    assert green > 120 and red < 60 and blue < 60, (path, red, green, blue)  # the uploaded texture, not pink


def test_download_keeps_the_output_folder_or_writes_flat(flow):
    name = flow["item"]["outputFileName"]
    assert flow["download_true"] == {"result": True}
    assert flow["files_true"] == [f"{name}/{image}" for image in IMAGES]
    assert flow["download_false"] == {"result": True}
    assert flow["files_false"] == IMAGES
    for relative in flow["files_true"]:
        _check_image(flow["work"] / "dl_true" / relative)
    for relative in flow["files_false"]:
        _check_image(flow["work"] / "dl_false" / relative)


def test_downloading_again_leaves_identical_files_alone(flow):
    assert flow["download_again"] == {"result": True}
    assert sum("is up to date" in line for line in flow["log_again"]) == len(IMAGES)
    assert not any("download file done" in line for line in flow["log_again"])


def test_a_folder_with_nothing_in_it_is_download_failed(flow):
    error = flow["download_nothing"]["error"]
    assert error.startswith("DownloadFailed") and "no output files" in error


def test_manage_task_reads_the_live_item(flow):
    [status] = flow["manage_status"]["result"]
    assert status["task_id"] == str(flow["task_id"]) and status["task_status_code"] == "25"
    assert status["task_status_description"] == "Done"


def test_auto_download_fetches_the_outputs_once_the_task_ended(flow):
    assert flow["auto_download"] == {"result": True}
    name = flow["item"]["outputFileName"]
    assert flow["files_auto"] == [f"{name}/{image}" for image in IMAGES]
    for relative in flow["files_auto"]:
        _check_image(flow["work"] / "dl_auto" / relative)
