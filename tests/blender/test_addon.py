"""The Blender add-on in the real Blender: made by `rayfarm blender-addon zip|install`, driven headless, and
submitting a scene to a real farm whose node renders it with the scene's texture and linked library.

Blender's user folders are a throwaway tmp dir (BLENDER_USER_CONFIG, BLENDER_USER_SCRIPTS), as is the
rayfarm profile file (XDG_CONFIG_HOME): nothing touches the real home.
"""

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from PIL import Image

from rayfarm.cli import profiles
from rayfarm.sdk import RayfarmAPI
from tests.support.blender import LinkedScene, make_linked_scene
from tests.support.processes import PYTHON, wait_for

CLIENT_VARS = ("RAYFARM_SERVER", "RAYFARM_ACCESS_ID", "RAYFARM_ACCESS_KEY", "RAYFARM_PROFILE", "RAYFARM_EXE",
               "RAYFARM_BLENDER")
MARK = "RESULT "
BLENDER = shutil.which("blender") or "blender"
FILES = ["rayfarm_blender/__init__.py", "rayfarm_blender/command.py", "rayfarm_blender/install.json",
         "rayfarm_blender/ui.py"]


def environment(tmp_path: Path) -> dict:
    """The user's environment, with Blender's user folders and the rayfarm profiles in tmp_path, and no
    `rayfarm` on the PATH: the add-on must find the one its installer recorded."""
    env = {key: value for key, value in os.environ.items() if key not in CLIENT_VARS}
    env.update(BLENDER_USER_CONFIG=str(tmp_path / "blender" / "config"),
               BLENDER_USER_SCRIPTS=str(tmp_path / "blender" / "scripts"),
               XDG_CONFIG_HOME=str(tmp_path / "xdg"), PATH=os.pathsep.join([str(Path(BLENDER).parent), "/usr/bin", "/bin"]))
    return env


def rayfarm(*args, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([PYTHON, "-m", "rayfarm", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"rayfarm {' '.join(map(str, args))} exited {done.returncode}:\n{done.stderr}"
    return done


def blender(script: str, env: dict, *files: Path) -> dict:
    """Run ``script`` in background Blender with the user's preferences (and so the add-ons they enable)."""
    done = subprocess.run([BLENDER, "-b", *map(str, files), "--python-exit-code", "1", "--python-expr",
                           f"MARK = {MARK!r}\n{script}"], capture_output=True, text=True, env=env, timeout=180)
    lines = [line[len(MARK):] for line in done.stdout.splitlines() if line.startswith(MARK)]
    assert done.returncode == 0 and lines, (done.stdout + done.stderr)[-4000:]
    return json.loads(lines[-1])


INSTALL_ZIP = """
import bpy, json
bpy.ops.preferences.addon_install(filepath={zip!r})
bpy.ops.preferences.addon_enable(module="rayfarm_blender")
from rayfarm_blender import ui
settings = bpy.context.scene.rayfarm
print(MARK + json.dumps({{"submit": hasattr(bpy.ops.rayfarm, "submit"), "rayfarm": ui._rayfarm(),
                         "addons": bpy.utils.user_resource("SCRIPTS", path="addons"),
                         "settings": sorted(settings.bl_rna.properties.keys())}}))
"""


def test_zip_installs_in_blender_and_runs_the_rayfarm_it_was_made_with(tmp_path):
    env = environment(tmp_path)
    archive = tmp_path / "rayfarm_blender.zip"
    rayfarm("blender-addon", "zip", archive, env=env)
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == FILES
        recorded = json.loads(opened.read("rayfarm_blender/install.json"))["rayfarm"]
    assert Path(recorded) == Path(PYTHON).parent / "rayfarm"  # the venv's own command line

    found = blender(INSTALL_ZIP.format(zip=str(archive)), env)

    assert found["submit"] and found["rayfarm"] == recorded
    assert Path(found["addons"]) == tmp_path / "blender" / "scripts" / "addons"
    assert (tmp_path / "blender" / "scripts" / "addons" / "rayfarm_blender" / "ui.py").is_file()
    assert {"frames", "chunk", "priority", "priority_frames", "pause_after_priority", "limit", "camera", "labels",
            "project", "profile", "last_task_id"} <= set(found["settings"])


SUBMIT = """
import bpy, json
prefs = bpy.context.preferences.addons["rayfarm_blender"].preferences
prefs.server, prefs.access_id, prefs.access_key = {server!r}, {access_id!r}, "not-the-key"
settings = bpy.context.scene.rayfarm
try:
    bpy.ops.rayfarm.submit()  # no profile named: the server and keys of the preferences
    refused = ""
except RuntimeError as exc:
    refused = str(exc)
settings.profile, settings.labels, settings.project, settings.priority = "studio", "addon, linked", "Shorts", 70
bpy.ops.rayfarm.submit()  # the profile wins over the preferences
print(MARK + json.dumps({{"refused": refused, "taskId": settings.last_task_id, "dashboard": settings.last_dashboard,
                         "status": settings.status}}))
"""


def test_installed_add_on_submits_a_scene_whose_texture_and_library_resolve_on_the_node(farm, tmp_path):
    env = environment(tmp_path)
    user = farm.create_user("blenderartist")
    profiles.save(profiles.Profile("studio", farm.url, user.access_id, user.access_key), make_default=False,
                  path=tmp_path / "xdg" / "rayfarm" / "config.toml")
    installed = rayfarm("blender-addon", "install", "--blender", BLENDER, env=env)
    assert "enabled it for Blender" in installed.stdout, installed.stdout
    assert (tmp_path / "blender" / "config" / "userpref.blend").is_file()
    scene = make_linked_scene(tmp_path / "user")

    result = blender(SUBMIT.format(server=farm.url, access_id=user.access_id), env, scene.shot)

    assert result["refused"].startswith("Error: The farm refused: error 611"), result
    task_id = result["taskId"]
    assert task_id > 0 and result["dashboard"] == f"{farm.url}/#/task/{task_id}", result
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    task = api.query.task_info([task_id])["items"][0]
    assert (task["labels"], task["projectName"], task["taskUserLevel"], task["totalFrames"]) == (
        ["addon", "linked"], "Shorts", 70, 1), task
    # The node must render from what was uploaded alone: the user's files (whose absolute paths the
    # scene names) are gone before it starts.
    (tmp_path / "user").rename(tmp_path / "gone")
    worker = farm.start_worker("blendernode")
    wait_for(lambda: api.query.task_info([task_id])["items"][0]["taskStatus"] in (25, 30, 45), 90, "the render",
             details=worker.log)
    assert api.query.task_info([task_id])["items"][0]["taskStatus"] == 25, worker.log()
    [entry] = [e for e in api.files.output_files(task_id) if not e["directory"]]
    image = Image.open(api.files.download_file(entry["filePath"], tmp_path / "out.png")).convert("RGB")
    assert image.size == (64, 36)
    seen = {name: image.getpixel(xy) for name, xy in LinkedScene.PIXELS.items()}
    # Blender's missing-file pink or a missing object would show instead of these colours:
    assert _near(seen["ground"], LinkedScene.BLUE), seen  # a texture named by its absolute path
    assert _near(seen["side"], LinkedScene.GREEN), seen  # one named //tex/side.png
    assert _near(seen["prop"], LinkedScene.RED), seen  # an object from a library named by its absolute path...
    assert _near(seen["prop2"], LinkedScene.YELLOW), seen  # ...with its own textures, relative and absolute


def _near(colour: tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected, strict=True))
