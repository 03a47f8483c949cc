"""Upgrading with the farm running: a node says its worker protocol at register; the server serves the
protocols from its oldest to its own and refuses any other node with HTTP 426 and a sentence, and such a
node stops at once saying it (instead of retrying forever)."""

import os
import subprocess

import httpx

import rayfarm
from rayfarm.protocol import nodes as wire
from tests.support.processes import PYTHON

REGISTER = {"name": "upgrading", "hostname": "h", "slots": 1, "cores": 2, "memory": 1, "software": {"command": ""}}


def register(farm, **fields) -> httpx.Response:
    return httpx.post(f"{farm.url}{wire.API}/register", json={**REGISTER, **fields}, timeout=30,
                      headers={"Authorization": f"Bearer {farm.worker_token()}"})


def test_nodes_of_this_protocol_and_older_ones_that_send_none_register(farm):
    answer = register(farm, protocol=wire.VERSION, version=rayfarm.__version__)
    assert answer.status_code == 200 and answer.json()["protocol"] == wire.VERSION
    older = register(farm, version="0.0.9")  # a node from before the field existed speaks protocol 1
    assert older.status_code == 200, older.text


def test_a_newer_node_is_refused_with_426_and_told_to_upgrade_the_server_first(farm):
    answer = register(farm, name="from-the-future", protocol=wire.VERSION + 1, version="9.0.0")
    assert answer.status_code == 426
    error = answer.json()["error"]
    assert f"protocol {wire.VERSION + 1}" in error and "rayfarm 9.0.0" in error and "upgrade the server" in error
    listed = httpx.post(f"{farm.url}{wire.API}/lease", json={"workerId": 1, "session": "x"}, timeout=30,
                        headers={"Authorization": f"Bearer {farm.worker_token()}"})
    assert listed.status_code == 404  # nothing was registered for it


def test_a_node_the_server_refuses_stops_with_the_servers_sentence(farm, tmp_path):
    """A real `rayfarm worker` speaking the next protocol: it exits (code 3) instead of retrying."""
    newer = ("import sys; import rayfarm.protocol.nodes as n; n.VERSION += 1; from rayfarm.cli import main; "
             "sys.argv[0] = 'rayfarm'; main()")
    done = subprocess.run([PYTHON, "-c", newer, "worker", "run", "--server", farm.url, "--name", "newer",
                           "--work-dir", str(tmp_path / "work")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "RAYFARM_WORKER_TOKEN": farm.worker_token()})
    assert done.returncode == 3, done.stderr
    assert "HTTP 426" in done.stderr and "upgrade the server first" in done.stderr, done.stderr

