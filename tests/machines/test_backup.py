"""`rayfarm backup` while the farm runs, `rayfarm restore` into a fresh data dir and database: a new server there
has every user, task, frame, input and output, answers the same access keys and takes the same node token."""

import hashlib
import json
import os
import subprocess

import pytest

from rayfarm.sdk import RayfarmAPI
from tests.machines.support import rayfarm
from tests.support.databases import fresh_database_url
from tests.support.processes import FarmServer, free_port, wait_for

COMMAND = ["sh", "-c", "echo rendered frame {frame} > {output}/frame{frame}.txt"]


def command_task(frames: str) -> dict:
    return {"software_config": {"cg_name": "command", "cg_version": "", "plugins": {}},
            "task_info": {"input_cg_file": "", "frames_per_task": "1", "pre_frames": "000", "stop_after_test": "2"},
            "scene_info": {"common": {"frames": frames}}, "additional_info": {"command": COMMAND}}


def submit(api: RayfarmAPI, frames: str) -> int:
    task_id = api.task.create_task()["taskIdList"][0]
    api.task.upload_task_json(task_id, command_task(frames))
    api.task.submit_task(task_id)
    return task_id


def status(api: RayfarmAPI, task_id: int) -> int:
    return api.query.task_info([task_id])["items"][0]["taskStatus"]


def what_the_farm_holds(api: RayfarmAPI, tasks: list[int], folder) -> dict:
    """Every task's state and frames, and the sha256 of every output file, as the API shows them."""
    held = {}
    for task_id in tasks:
        info = api.query.task_info([task_id])["items"][0]
        frames = api.query.task_frames(task_id, page_size=100)["items"]
        outputs = {}
        for entry in api.files.output_files(task_id):
            if not entry["directory"]:
                path = api.files.download_file(entry["filePath"], folder / str(task_id) / entry["fileName"])
                outputs[entry["fileName"]] = hashlib.sha256(path.read_bytes()).hexdigest()
        held[task_id] = {"status": info["taskStatus"], "done": info["doneFrames"], "total": info["totalFrames"],
                         "frames": [(f["frameIndex"], f["frameStatus"]) for f in frames], "outputs": outputs}
    return held


def test_a_backup_restored_into_a_fresh_server_has_every_task_and_output(farm, tmp_path):
    user = farm.create_user("keeper", "--allow-commands")
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    (tmp_path / "shot.blend").write_bytes(b"scene bytes " * 1000)
    api.files.upload(tmp_path / "shot.blend", "D:/proj/shot.blend")
    node = farm.start_worker("keeper-node")
    rendered = submit(api, "1-3")
    wait_for(lambda: status(api, rendered) == 25, 60, "the first task to render", details=node.log)
    node.stop()
    stopped = submit(api, "1-2")
    api.task.stop_task([stopped])  # stopped before it renders: it must be stopped after the restore too
    before = what_the_farm_holds(api, [rendered, stopped], tmp_path / "before")
    assert before[rendered]["done"] == 3 and len(before[rendered]["outputs"]) == 3
    assert before[stopped]["status"] == 10 and before[stopped]["done"] == 0

    backup = tmp_path / "backup"
    made = json.loads(rayfarm("backup", backup, "--data-dir", farm.data_dir, "--json", env=farm.env).stdout)
    assert made["secret"] == "included" and made["counts"]["tasks"] >= 2, made
    assert (backup / "secret.key").stat().st_mode & 0o777 == 0o600 and backup.stat().st_mode & 0o777 == 0o700
    old_token = farm.worker_token()
    farm.stop()

    fresh = FarmServer(tmp_path / "restored", free_port(), env={"RAYFARM_DATABASE_URL": fresh_database_url() or ""})
    if not fresh.env["RAYFARM_DATABASE_URL"]:
        del fresh.env["RAYFARM_DATABASE_URL"]  # SQLite in the new data dir
    fresh.data_dir.mkdir()
    restored = json.loads(rayfarm("restore", backup, "--data-dir", fresh.data_dir, "--json", env=fresh.env).stdout)
    assert restored["restored"] == made["counts"]
    fresh.start()
    try:
        again = RayfarmAPI(user.access_id, user.access_key, domain=fresh.domain)  # the same keys: same secret
        assert what_the_farm_holds(again, [rendered, stopped], tmp_path / "after") == before
        stored = fresh.data_dir / "storage" / str(user.user_id) / "input" / "D" / "proj" / "shot.blend"
        assert stored.read_bytes() == (tmp_path / "shot.blend").read_bytes()
        assert stored.stat().st_nlink == 2  # still one copy of the content (input links to cas)
        assert fresh.worker_token() == old_token
        fresh.start_worker("keeper-node")  # the old token joins the restored farm, which renders what was stopped
        again.task.start_task([stopped])
        wait_for(lambda: status(again, stopped) == 25, 60, "the stopped task to render after the restore",
                 details=fresh.log)
    finally:
        fresh.stop()

    refused = rayfarm("restore", backup, "--data-dir", fresh.data_dir, env=fresh.env, check=False)
    assert refused.returncode == 2 and "not empty" in refused.stderr, refused.stderr
    forced = json.loads(rayfarm("restore", backup, "--data-dir", fresh.data_dir, "--force", "--json",
                                env=fresh.env).stdout)  # over the farm that rendered since: the backup's again
    assert forced["restored"] == made["counts"] and forced["files"]["storage"] == made["files"]["storage"]


@pytest.fixture
def running(farm):
    farm.create_user("someone")
    return farm


def test_a_backup_without_its_secret_restores_only_where_that_secret_is(running, tmp_path):
    farm = running
    backup = tmp_path / "backup"
    made = json.loads(rayfarm("backup", backup, "--data-dir", farm.data_dir, "--without-secret", "--json",
                              env=farm.env).stdout)
    assert made["secret"] == "left out" and not (backup / "secret.key").exists()

    def restore_into(name: str, secret: bytes | None, **env) -> subprocess.CompletedProcess:
        target = tmp_path / name
        target.mkdir(mode=0o700)
        if secret is not None:
            (target / "secret.key").write_bytes(secret)
            os.chmod(target / "secret.key", 0o600)
        url = fresh_database_url()
        return rayfarm("restore", backup, "--data-dir", target, check=False,
                       env={**env, **({"RAYFARM_DATABASE_URL": url} if url else {})})

    missing = restore_into("no-secret", None)
    assert missing.returncode == 2 and "made without its secret key" in missing.stderr, missing.stderr
    assert "secret.key" in missing.stderr and "RAYFARM_SECRET" in missing.stderr
    wrong = restore_into("wrong-secret", b"another farm's secret")
    assert wrong.returncode == 2 and "not the one this backup was made with" in wrong.stderr, wrong.stderr
    assert not (tmp_path / "wrong-secret" / "storage").exists()  # refused before anything changed
    right = restore_into("right-secret", (farm.data_dir / "secret.key").read_bytes())
    assert right.returncode == 0, right.stderr
