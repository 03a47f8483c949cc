"""A node (and an artist's machine) installs only what it needs: `pip install rayfarm` has no server packages,
those are the `[server]` extra, and a node and the client commands work without them (node_only.py hides
them, as on such a machine)."""

import importlib.metadata
import json
import re
import subprocess
import tomllib

from rayfarm.sdk import RayfarmAPI
from tests.machines.node_only import SERVER_ONLY
from tests.machines.support import NODE_ONLY, ROOT
from tests.support.processes import PYTHON, wait_for


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def names(requirements: list[str]) -> set[str]:
    found = {normal(re.split(r"[\[=<>~ ;]", requirement, maxsplit=1)[0]) for requirement in requirements}
    return found | ({"psycopg-binary"} if "psycopg" in found else set())  # psycopg[binary] installs it


def test_the_server_packages_are_an_extra_and_node_only_hides_exactly_them():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base, server = names(project["dependencies"]), names(project["optional-dependencies"]["server"])
    assert not base & server
    assert {"starlette", "uvicorn", "sqlalchemy", "psycopg", "cryptography", "pillow"} <= server
    modules = {module for module, dists in importlib.metadata.packages_distributions().items()
               if any(normal(dist) in server for dist in dists) and not module.startswith("_")}
    assert modules == set(SERVER_ONLY), modules ^ set(SERVER_ONLY)


def test_a_node_install_renders_and_an_artists_install_lists_tasks(farm, tmp_path):
    user = farm.create_user("light", "--allow-commands")
    log = tmp_path / "node.log"
    with open(log, "ab") as handle:
        node = subprocess.Popen([PYTHON, str(NODE_ONLY), "worker", "run", "--server", farm.url, "--name", "light",
                                 "--work-dir", str(tmp_path / "work")], stdout=handle, stderr=subprocess.STDOUT,
                                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                     "RAYFARM_WORKER_TOKEN": farm.worker_token()}, start_new_session=True)
    try:
        api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
        task_id = api.task.create_task()["taskIdList"][0]
        api.task.upload_task_json(task_id, {
            "software_config": {"cg_name": "command", "cg_version": "", "plugins": {}},
            "task_info": {"input_cg_file": "", "frames_per_task": "1"}, "scene_info": {"common": {"frames": "1-2"}},
            "additional_info": {"command": ["sh", "-c", "echo {frame} > {output}/out{frame}.txt"]}})
        api.task.submit_task(task_id)
        wait_for(lambda: api.query.task_info([task_id])["items"][0]["taskStatus"] == 25, 60, "the node install to render",
                 details=log.read_text)
        listed = subprocess.run([PYTHON, str(NODE_ONLY), "task", "list", "--json", "--server", farm.url, "--access-id",
                                 user.access_id, "--access-key", user.access_key], capture_output=True, text=True,
                                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
                                timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert [item["id"] for item in json.loads(listed.stdout)["items"]] == [task_id]
    finally:
        node.terminate()
        node.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()
