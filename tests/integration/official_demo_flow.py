"""The official Blender demo (rayvision_blender's help/examples/blender_demo.py, spec renderbus-workflow.md
section 7) against a rayfarm farm, run with the interpreter of the official client's virtual environment and
PYTHONPATH = the rayfarm repository (only ``rayfarm.compat.rayvision_sync`` is imported from it):

    python official_demo_flow.py

Everything is the official packages' own code, in the demo's order, except two things the demo cannot do
here: the analysis (rayvision_blender's analyser is a Windows-only binary) is replaced by the package's own
``write_task_json`` plus the scene section the analyser writes, and files move through rayfarm's drop-in for
rayvision_sync (the one import a customer changes). Environment: RAYFARM_DOMAIN, RAYFARM_USER_ID,
RAYFARM_USER_KEY, RAYFARM_WORK (holds proj/shot.blend and proj/tex/flat.png), RAYFARM_CG_VERSION,
RAYFARM_DEADLINE. Prints one JSON object with what each step answered.
"""

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from rayvision_api import RayvisionAPI
from rayvision_api.task.check import RayvisionCheck
from rayvision_api.utils import append_to_upload, update_task_info
from rayvision_blender.analyze_blender import AnalyzeBlender
from rayvision_sync.manage import RayvisionManageTask

# the one import line a customer changes (was: from rayvision_sync.upload / .download import ...)
from rayfarm.compat.rayvision_sync import RayvisionDownload, RayvisionUpload

WORK = Path(os.environ["RAYFARM_WORK"])
SCENE = WORK / "proj" / "shot.blend"
TEXTURE = WORK / "proj" / "tex" / "flat.png"
HARDWARE = {"model": "Default", "ram": "128GB", "gpuNum": None}  # the demo's own


def attempt(call):
    try:
        return {"result": call()}
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return {"error": f"{type(exc).__name__}: {exc}", "at": traceback.format_exc()[-1500:]}


def scene_section(path):
    """What the analyser adds to task.json for a Blender scene (the docs' "Configuration file for Blender")."""
    data = json.loads(Path(path).read_text())
    common = {"width": "64", "height": "64", "scene_name": ["Scene"], "Output_path": "/tmp\\",
              "camera_name": '<bpy_struct, Object("Camera") at 0x7f1c2a3b4c58>',  # Blender 3's str(camera)
              "Render_Format": "PNG", "frames": "1-2[1]"}
    data["scene_info"] = {"common": common}
    Path(path).write_text(json.dumps(data, indent=4))


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def main():
    logger = logging.getLogger("official-demo")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    out = {}
    # 0. log in
    api = RayvisionAPI(access_id=os.environ["RAYFARM_USER_ID"], access_key=os.environ["RAYFARM_USER_KEY"],
                       domain=os.environ["RAYFARM_DOMAIN"], platform="2", protocol="http", logger=logger)

    # 1. "analysis": the package writes task.json itself; the Windows analyser would add the scene section
    (WORK / "analyse").mkdir(exist_ok=True)
    analyze = AnalyzeBlender(cg_file=str(SCENE), software_version=os.environ["RAYFARM_CG_VERSION"],
                             project_name="demo", plugin_config={}, workspace=str(WORK / "analyse"),
                             platform="2", logger=logger)
    analyze.write_task_json()
    scene_section(analyze.task_json)

    # 2. the demo's settings (it asks for a pause after the priority frame; "2" goes on, see spec section 7)
    update_task_info({"pre_frames": "100", "stop_after_test": "2"}, analyze.task_json)
    upload_json = WORK / "upload.json"
    upload_json.write_text('{"asset": []}')
    append_to_upload([str(SCENE), str(TEXTURE)], str(upload_json))
    out["upload_json"] = json.loads(upload_json.read_text())

    # 3-4. the official check: first with the demo's Blender version, which no node has, then the nodes' one
    old = json.loads(Path(analyze.task_json).read_text())
    old["software_config"]["cg_version"] = "2.78"
    old_path = WORK / "old" / "task.json"
    old_path.parent.mkdir(exist_ok=True)
    old_path.write_text(json.dumps(old))
    out["check_old_version"] = attempt(lambda: RayvisionCheck(api).execute(HARDWARE, str(old_path)))
    out["check"] = attempt(lambda: RayvisionCheck(api, analyze).execute(HARDWARE, analyze.task_json,
                                                                          analyze.upload_json))
    task_id = out["check"]["result"]
    out["task_json"] = json.loads(Path(analyze.task_json).read_text())

    # 5. upload the assets and the configuration files
    upload = RayvisionUpload(api, automatic_line=True, logger=logger)
    out["upload_asset"] = attempt(lambda: upload.upload_asset(upload_json_path=str(upload_json)))
    configs = [analyze.tips_json, analyze.task_json, analyze.asset_json, str(upload_json)]
    out["upload_config"] = attempt(lambda: upload.upload_config(str(task_id), configs))

    # 6. submit
    out["submit"] = attempt(lambda: api.submit(int(task_id)))

    # 7. wait for the end with the official RayvisionManageTask, then download what it names
    manage = RayvisionManageTask(api.query)
    deadline = time.monotonic() + float(os.environ.get("RAYFARM_DEADLINE", "60"))
    ended = None
    while time.monotonic() < deadline:
        ended = manage.is_task_end(int(task_id), False)
        if ended:
            break
        time.sleep(0.5)
    out["ended"] = ended
    statuses = manage.get_task_status([int(task_id)])
    out["statuses"] = statuses
    out["outputs"] = manage.output_file_names(statuses)
    download = RayvisionDownload(api, logger=logger)
    out["auto_download"] = attempt(lambda: download.auto_download([int(task_id)], sleep_time=0.5,
                                                                  local_path=str(WORK / "downloads")))
    out["files"] = files_under(WORK / "downloads") if (WORK / "downloads").is_dir() else []
    out["task_id"] = task_id
    return out


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(), default=str) + "\n")
