"""Persistent Blender sessions on a real farm: a real server, a real `rayfarm worker`, real (confined) Blender.

A task in chunks of two frames renders every chunk in one Blender session (the node starts Blender once), a task
that opts out (`task_info.persistent_session: "0"`) starts Blender for every chunk; the frames of both are the
frames a one-shot `blender -a` run renders (the scene's metadata stamps off: the same pixels and metadata, but for
the render times Cycles writes into every file).
"""

import shutil
import subprocess

import pytest
from PIL import Image

from rayfarm.sdk import RayfarmAPI
from rayfarm.worker.renderers.blender import BlenderRenderer
from tests.integration.test_farm import FINISHED, report, submit, wait_task
from tests.support import taskjson
from tests.support.blender import make_scene, png_chunks

pytestmark = pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not installed")

SETTINGS = {"width": "64", "height": "36", "Render_Format": "PNG", "camera_name": "SideCamera"}


def by_hand(scene, frames: tuple[int, int], folder) -> dict[str, bytes]:
    """The frames as one one-shot run renders them, with the task's settings: {file name: bytes}."""
    render = {"software": "blender", "scene": "/D/proj/shot.blend", "camera": "SideCamera", "width": 64, "height": 36,
              "format": "PNG"}
    folder.mkdir(parents=True)
    [argv] = BlenderRenderer(render).commands({"start": frames[0], "end": frames[1], "step": 1}, scene, folder)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_chunks_render_in_one_blender_session_and_an_opted_out_task_starts_blender_per_chunk(farm, tmp_path):
    user = farm.create_user("artist")
    scene = make_scene(tmp_path / "scene" / "shot.blend", frames=6, width=64, height=36, samples=4, stamps=False)
    expected = by_hand(scene, (1, 6), tmp_path / "by-hand")
    with RayfarmAPI(user.access_id, user.access_key, domain=farm.domain) as api:
        api.files.upload(scene, "D:/proj/shot.blend")
        node = farm.start_worker("render-1")

        task_json = taskjson.blender("D:/proj/shot.blend", frames="1-6[1]", frames_per_task="2",
                                    cg_version="")  # any version the node has
        task_json["scene_info"]["common"].update(SETTINGS)
        task_id = submit(api, task_json)
        done = wait_task(farm, api, task_id, FINISHED, 180)
        assert (done["taskStatus"], done["doneFrames"]) == (25, 6), report(farm, api, task_id)
        written = {path.name: path.read_bytes() for path in api.files.download_task(task_id, tmp_path / "persistent")}
        assert sorted(written) == [f"shot_{n:04d}.png" for n in range(1, 7)]
        for name, data in written.items():
            assert png_chunks(data) == png_chunks(expected[name]), name
        log = node.log()
        assert log.count("starting Blender session") == 1, log[-3000:]  # three chunks, one Blender start
        assert "starting Blender session 1 (confined)" in log or "render jobs cannot be confined" in log

        opted_out = taskjson.blender("D:/proj/shot.blend", frames="3-6[1]", frames_per_task="2", cg_version="",
                                      persistent_session="0")
        opted_out["scene_info"]["common"].update(SETTINGS)
        task_id = submit(api, opted_out)
        done = wait_task(farm, api, task_id, FINISHED, 180)
        assert (done["taskStatus"], done["doneFrames"]) == (25, 4), report(farm, api, task_id)
        paths = api.files.download_task(task_id, tmp_path / "one-shot")
        assert sorted(path.name for path in paths) == [f"shot_{n:04d}.png" for n in range(3, 7)]
        for path in paths:
            assert png_chunks(path.read_bytes()) == png_chunks(expected[path.name]), path.name
            with Image.open(path) as image:
                assert image.size == (64, 36)
        log = node.log()
        assert log.count("starting Blender session") == 1  # none more
        assert log.count("run 1/1: blender") == 2, log[-3000:]  # a Blender start for each of its two chunks
