"""rayfarm's rayvision_sync drop-in driven by rayfarm's own SDK (RayfarmAPI, httpx) against a real farm.

The official SDK's side is in ``test_official_sync.py``; here: resuming an interrupted upload, folder
entries, files that cannot be uploaded, and the polling downloads on a command task rendered by a node.
"""

import hashlib
import json
import logging
import os
import sys

import httpx
import pytest

from rayfarm.compat.rayvision_sync import (
    DownloadFailed,
    RayvisionDownload,
    RayvisionError,
    RayvisionUpload,
)
from rayfarm.compat.rayvision_sync import download as download_module
from rayfarm.sdk import RayfarmAPI
from tests.support.processes import UNCONFINED_COMMANDS, wait_for

# One frame: copies the uploaded scene file's text into {output}/f_<frame>.txt.
COPY = "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2] + '/f_' + sys.argv[3] + '.txt')"


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def lines():
    handler = Lines()
    logger = logging.getLogger(f"compat-sync-test-{id(handler)}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler.logger = logger
    return handler


@pytest.fixture
def user(farm):
    return farm.create_user("syncer", "--allow-commands")


@pytest.fixture
def api(farm, user):
    client = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    yield client
    client.close()


def stored(farm, user, local) -> bytes:
    return (farm.data_dir / "storage" / str(user.user_id) / "input" / str(local).lstrip("/")).read_bytes()


def write_upload_json(path, *locals_):
    path.write_text(json.dumps({"asset": [{"local": str(local), "server": str(local)} for local in locals_]}))
    return str(path)


def test_an_interrupted_upload_goes_on_from_where_it_stopped(farm, user, api, lines, tmp_path):
    big = tmp_path / "cache.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024 + 123))
    data = big.read_bytes()
    started = api.connect.post("/api/rayfarm/file/uploadInit",
                               {"localPath": str(big), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    cut = 3 * 1024 * 1024
    sent = httpx.put(api.connect.address(started["url"]), params={"offset": 0}, content=data[:cut])
    assert sent.json() == {"offset": cut, "done": False}  # the first run stopped here

    upload = RayvisionUpload(api, logger=lines.logger)
    assert upload.upload_asset(write_upload_json(tmp_path / "upload.json", big)) is True
    progress = [line for line in lines.messages if line.startswith("uploading")]
    assert progress[0] == f"uploading {big}: {cut}/{len(data)} bytes (33%)", progress  # only the rest was sent
    assert stored(farm, user, big) == data


def test_folder_entries_upload_every_file_and_missing_files_are_named(farm, user, api, lines, tmp_path):
    folder = tmp_path / "textures"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(b"a")
    (folder / "sub" / "b.png").write_bytes(b"b")
    upload = RayvisionUpload(api, logger=lines.logger)
    assert upload.upload_asset(write_upload_json(tmp_path / "upload.json", folder)) is True
    assert stored(farm, user, folder / "a.png") == b"a" and stored(farm, user, folder / "sub" / "b.png") == b"b"

    present = tmp_path / "present.txt"
    present.write_text("here")
    with pytest.raises(RayvisionError) as caught:
        upload.upload_asset(write_upload_json(tmp_path / "upload2.json", tmp_path / "gone.exr", present))
    assert caught.value.error_code == 200025 and f"{tmp_path / 'gone.exr'}: no such file" in caught.value.error
    assert stored(farm, user, present) == b"here"  # the others still went


def test_command_task_round_trip_and_polling_downloads(farm, user, api, lines, tmp_path, monkeypatch):
    scene = tmp_path / "proj" / "scene.txt"
    scene.parent.mkdir()
    scene.write_text("uploaded by the drop-in\n")
    task_json = {"software_config": {"cg_name": "command", "cg_version": "", "plugins": {}},
                 "task_info": {"input_cg_file": str(scene), "frames_per_task": "1", "pre_frames": "000",
                               "stop_after_test": "2"},
                 "scene_info": {"common": {"frames": "1-3[1]"}},
                 "additional_info": {"command": [sys.executable, "-c", COPY, "{scene}", "{output}", "{frame}"]}}
    (tmp_path / "task.json").write_text(json.dumps(task_json))
    write_upload_json(tmp_path / "upload.json", scene)

    task_id = api.task.create_task()["taskIdList"][0]
    upload = RayvisionUpload(api, logger=lines.logger)
    assert upload.upload(str(task_id), str(tmp_path / "task.json"), str(tmp_path / "tips.json"),
                         str(tmp_path / "asset.json"), str(tmp_path / "upload.json")) is True
    api.task.submit_task(task_id)

    download = RayvisionDownload(api, logger=lines.logger)
    assert download.manage_task.is_task_end(task_id, False) is False  # waiting: no node yet
    farm.start_worker("sync-cmd", UNCONFINED_COMMANDS)  # the command is the venv's python
    assert download.auto_download([task_id], sleep_time=0.2, local_path=str(tmp_path / "auto")) is True
    name = f"{task_id}_scene"
    outputs = {f"f_{frame}.txt" for frame in (1, 2, 3)}
    assert {p.name for p in (tmp_path / "auto" / name).iterdir()} == outputs
    assert all(p.read_text() == "uploaded by the drop-in\n" for p in (tmp_path / "auto" / name).iterdir())

    monkeypatch.setattr(download_module, "SETTLE_SECONDS", 0)
    waiting = [task_id]
    assert download.auto_download_after_task_completed(waiting, sleep_time=0, local_path=str(tmp_path / "after"),
                                                       download_filename_format="false") is True
    assert waiting == []  # the caller's own list
    assert {p.name for p in (tmp_path / "after").iterdir()} == outputs

    assert download.download([task_id], local_path=str(tmp_path / "by-id")) is True
    assert {p.name for p in (tmp_path / "by-id" / name).iterdir()} == outputs
    with pytest.raises(DownloadFailed):
        download.download(server_path=f"{task_id}_absent", local_path=str(tmp_path / "absent"))


def test_download_failed_for_a_task_without_outputs_once_it_ended(farm, user, api, lines, tmp_path):
    task_json = {"software_config": {"cg_name": "command"}, "task_info": {"input_cg_file": ""},
                 "scene_info": {"common": {"frames": "1-1[1]"}},
                 "additional_info": {"command": [sys.executable, "-c", "pass"]}}
    task_id = api.task.create_task()["taskIdList"][0]
    api.task.upload_task_json(task_id, json.dumps(task_json))
    api.task.submit_task(task_id)
    farm.start_worker("sync-empty", UNCONFINED_COMMANDS)
    wait_for(lambda: api.query.task_info([task_id])["items"][0]["taskStatus"] == 25, 30, "the task to end")
    download = RayvisionDownload(api, logger=lines.logger)
    with pytest.raises(DownloadFailed) as caught:
        download.auto_download([task_id], sleep_time=0, local_path=str(tmp_path / "nothing"))
    assert f"Finally tasks download failed: [{task_id}]" in caught.value.error
