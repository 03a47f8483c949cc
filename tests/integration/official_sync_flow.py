"""A customer script: the official SDK (rayvision_api) with rayfarm's drop-in for rayvision_sync.

Run with the interpreter of the official client's virtual environment and PYTHONPATH = the rayfarm
repository (only ``rayfarm.compat`` is imported from it):

    python official_sync_flow.py

Environment: RAYFARM_DOMAIN (host:port), RAYFARM_USER_ID / RAYFARM_USER_KEY, RAYFARM_WORK (a folder
holding task.json and upload.json naming a scene and its texture, and extra/notes.txt), RAYFARM_DEADLINE
(seconds to wait for the render). A render node must be running. Prints one JSON object with what each
step answered; the test asserts it.
"""

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from rayvision_api import RayvisionAPI
from rayvision_api.utils import append_to_upload

# the one import line a customer changes (was: from rayvision_sync... import ...)
from rayfarm.compat.rayvision_sync import RayvisionDownload, RayvisionManageTask, RayvisionUpload

WORK = Path(os.environ["RAYFARM_WORK"])
ENDED = {10, 20, 23, 25, 30, 35, 45}


class Lines(logging.Handler):
    """Keeps the messages the drop-in logs."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def attempt(call):
    """What a call returned, or the exception it raised (type, message and where)."""
    try:
        return {"result": call()}
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return {"error": f"{type(exc).__name__}: {exc}", "at": traceback.format_exc()[-1500:]}


def submodules_mirror_the_official_layout():
    from rayfarm.compat.rayvision_sync import download, exception, manage, upload, utils

    return (upload.RayvisionUpload is RayvisionUpload and download.RayvisionDownload is RayvisionDownload
            and manage.RayvisionManageTask is RayvisionManageTask and callable(utils.cutting_upload)
            and exception.DownloadFailed.__module__ == "rayvision_sync.exception")


def wait_end(api, task_id):
    deadline = time.monotonic() + float(os.environ.get("RAYFARM_DEADLINE", "60"))
    while True:
        item = api.query.task_info([task_id])["items"][0]
        if item["taskStatus"] in ENDED or time.monotonic() > deadline:
            return item
        time.sleep(0.2)


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def main():
    out = {"submodules": submodules_mirror_the_official_layout()}
    lines = Lines()
    logger = logging.getLogger("official-sync-flow")
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    api = RayvisionAPI(access_id=os.environ["RAYFARM_USER_ID"], access_key=os.environ["RAYFARM_USER_KEY"],
                       domain=os.environ["RAYFARM_DOMAIN"], platform="2", protocol="http", logger=logger)

    upload = RayvisionUpload(api, logger=logger)
    task_id = api.task.create_task()["taskIdList"][0]
    out["task_id"] = task_id
    configs = [str(WORK / name) for name in ("task.json", "tips.json", "asset.json", "upload.json")]
    # tips.json and asset.json do not exist; the transmitter's options are ignored (even the demo's engine_type='')
    out["upload_config"] = attempt(lambda: upload.upload_config(str(task_id), configs, max_speed="1024",
                                                                engine_type="raysyncproxy", server_ip="203.0.113.9",
                                                                server_port="12121"))
    out["upload_asset"] = attempt(lambda: upload.upload_asset(str(WORK / "upload.json"), engine_type=""))
    out["upload_asset_again"] = attempt(lambda: upload.upload_asset(str(WORK / "upload.json")))

    # the official SDK's own upload.json: POSIX paths lose their leading "/" in "server"
    official = WORK / "official_upload.json"
    official.write_text('{"asset": []}')
    append_to_upload([str(WORK / "extra" / "notes.txt")], str(official))
    out["official_upload_json"] = json.loads(official.read_text())
    out["official_upload"] = attempt(lambda: upload.upload_asset(str(official)))
    out["missing_asset"] = attempt(lambda: upload.upload_asset(str(WORK / "missing_upload.json")))

    out["submit"] = attempt(lambda: api.submit(int(task_id)))
    item = wait_end(api, task_id)
    out["item"] = item

    download = RayvisionDownload(api, logger=logger)
    name = item["outputFileName"]
    out["download_true"] = attempt(lambda: download.download(server_path=name, local_path=str(WORK / "dl_true")))
    out["files_true"] = files_under(WORK / "dl_true")
    out["download_false"] = attempt(lambda: download.download(server_path=name, download_filename_format="false",
                                                              local_path=str(WORK / "dl_false")))
    out["files_false"] = files_under(WORK / "dl_false")
    before = len(lines.messages)
    out["download_again"] = attempt(lambda: download.download(server_path=name, local_path=str(WORK / "dl_true")))
    out["log_again"] = lines.messages[before:]
    out["download_nothing"] = attempt(lambda: download.download(server_path=f"{task_id}_nothing",
                                                                local_path=str(WORK / "dl_nothing")))

    # what needs queryTaskInfo's official item shape (isOpen, respRenderingTaskList)
    out["manage_status"] = attempt(lambda: RayvisionManageTask(api.query).get_task_status([task_id]))
    out["auto_download"] = attempt(lambda: download.auto_download([task_id], sleep_time=0.5,
                                                                  local_path=str(WORK / "dl_auto")))
    out["files_auto"] = files_under(WORK / "dl_auto") if (WORK / "dl_auto").is_dir() else []
    out["log"] = lines.messages
    return out


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(), default=str) + "\n")
