"""The official Blender demo's sequence, run by the official packages against a real farm with a real Blender node.

``official_demo_flow.py`` runs in the official client's own virtual environment (rayvision_api, rayvision_sync,
rayvision_utils, rayvision_blender from PyPI) with rayfarm's drop-in for rayvision_sync: task.json from
rayvision_blender's own ``write_task_json`` plus the analyser's scene section (camera in the ``bpy_struct``
form), upload.json from ``append_to_upload`` (POSIX paths: ``server`` without its leading ``/``), the official
``RayvisionCheck.execute`` with the demo's hardware, upload, ``api.submit``, the official
``RayvisionManageTask`` waiting for the end, ``auto_download``; the frames end up on disk and are checked here.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select

from rayfarm.store.db import sqlite_url
from rayfarm.store.schema import tasks
from tests.support.blender import make_textured_scene
from tests.support.farms import running_farm

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("official_demo_flow.py")
IMAGES = ["shot_0001.png", "shot_0002.png"]


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "demo")


@pytest.fixture(scope="module")
def flow(rayvision_sync_python, farm, tmp_path_factory):
    user = farm.create_user("demo")
    farm.start_worker("demo-node", wait=False)
    work = tmp_path_factory.mktemp("customer")
    make_textured_scene(work / "proj" / "shot.blend")  # a plane showing proj/tex/flat.png (green), 64 x 64
    farm.workers[0].wait_registered()
    env = {**os.environ, "RAYFARM_DOMAIN": farm.domain, "RAYFARM_USER_ID": user.access_id,
           "RAYFARM_USER_KEY": user.access_key, "RAYFARM_WORK": str(work), "RAYFARM_CG_VERSION": "3.4",
           "RAYFARM_DEADLINE": "60", "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(work)}
    done = subprocess.run([str(rayvision_sync_python), "-W", "ignore", str(SCRIPT)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=str(work))
    assert done.returncode == 0, f"the demo failed:\n{done.stderr[-4000:]}\nserver log:\n{farm.log()[-3000:]}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out.update(work=work, user=user)
    return out


def test_upload_json_is_the_official_posix_form(flow):
    work = flow["work"]
    assert flow["upload_json"] == {"asset": [{"local": str(path), "server": str(path)[1:]}
                                             for path in (work / "proj" / "shot.blend", work / "proj" / "tex" / "flat.png")]}


def test_a_blender_version_no_node_has_is_refused_by_the_official_check_before_any_task(flow, farm):
    error = flow["check_old_version"]["error"]
    assert error.startswith("RayvisionError") and "Blender 2.78 is not support, supported versions:3.4,3.4.1" in error
    url = farm.env.get("RAYFARM_DATABASE_URL") or sqlite_url(farm.data_dir)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:  # only the demo's own task was created
            assert conn.scalar(select(func.count()).select_from(tasks).where(tasks.c.user_id == flow["user"].user_id)) == 1
    finally:
        engine.dispose()


def test_the_official_check_fills_task_json_with_the_default_hardware(flow):
    assert isinstance(flow["check"]["result"], int) and flow["check"]["result"] == flow["task_id"]
    info = flow["task_json"]["task_info"]
    assert info["hardwareConfigIds"] == ["1"] and info["ram"] == "128" and info["graphics_cards_num"] == "2"
    assert info["task_id"] == str(flow["task_id"]) and info["user_id"] == str(flow["user"].user_id)
    assert info["project_id"] not in ("", "0")  # "demo", added by the check
    assert flow["task_json"]["scene_info_render"]["common"]["camera_name"].startswith('<bpy_struct, Object("Camera")')


def test_upload_and_submit_succeed(flow):
    assert flow["upload_asset"] == {"result": True}
    assert flow["upload_config"] == {"result": True}
    assert flow["submit"] == {"result": True}


def test_the_official_manage_task_sees_the_end_and_names_the_output_folder(flow):
    assert flow["ended"] is True
    [status] = flow["statuses"]
    assert status["task_status_code"] == "25" and status["is_opener"] == "0" and status["sub_task_status"] == []
    assert flow["outputs"] == [{"output_name": f"{flow['task_id']}_shot", "user_id": flow["user"].user_id,
                                "bid": "20201"}]


def test_auto_download_puts_the_rendered_frames_on_disk(flow):
    assert flow["auto_download"] == {"result": True}
    folder = f"{flow['task_id']}_shot"
    assert flow["files"] == [f"{folder}/{name}" for name in IMAGES]
    for name in IMAGES:
        with Image.open(flow["work"] / "downloads" / folder / name) as image:
            assert image.format == "PNG" and image.size == (64, 64), (name, image.size)
            red, green, blue = image.convert("RGB").getpixel((32, 32))
        assert green > 120 and red < 60 and blue < 60, (name, red, green, blue)  # the uploaded texture, not blank


def test_no_traceback_in_the_server_log(farm):
    assert "Traceback" not in farm.log()
