"""A studio's first day on one machine: a server over TLS whose data folder is root's alone, a render node that
runs as another OS user with the node install only, sharing no path with the server, and artists who submit
with `rayfarm submit` and with the unmodified official SDK over https (REQUESTS_CA_BUNDLE), and get their
frames back. Everything on loopback.
"""

import json
import os
import shlex
import subprocess

import psutil
import pytest
from PIL import Image

from tests.machines.support import NODE_ONLY, PYTHON, RemoteNode, TlsServer, as_user, can_read, make_certs, os_user, rayfarm
from tests.support.blender import make_textured_scene

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes a throwaway OS user for its nodes: run as root (CI)")

TASK_JSON = {"software_config": {"cg_name": "Blender"}, "task_info": {"input_cg_file": "D:/proj/shot.blend"},
             "scene_info_render": {"common": {"frames": "1", "Render_Format": "PNG"}}}
UPLOAD_JSON = {"asset": [{"local": "D:/proj/shot.blend", "server": "/D/proj/shot.blend"},
                         {"local": "D:/proj/tex/flat.png", "server": "/D/proj/tex/flat.png"}]}


@pytest.fixture(scope="module")
def node_user():
    with os_user() as user:
        yield user


@pytest.fixture(scope="module")
def farm(tmp_path_factory, node_user):
    certs = make_certs(tmp_path_factory.mktemp("tls"))
    server = TlsServer(tmp_path_factory.mktemp("server") / "farm", certs).start()
    node = RemoteNode(server, node_user, "remote-1")
    try:
        node.start()
        yield server, node
    finally:
        node.remove()
        server.stop()


@pytest.fixture(scope="module")
def artist(farm) -> dict:
    """An artist's environment: the farm's https URL, their keys and the studio CA (no profile)."""
    server, _ = farm
    user = server.user("artist")
    return {"RAYFARM_SERVER": server.url, "RAYFARM_ACCESS_ID": user["accessId"], "RAYFARM_ACCESS_KEY": user["accessKey"],
            "RAYFARM_CA_CERT": str(server.ca), "XDG_CONFIG_HOME": str(server.data_dir.parent / "no-config"),
            "RAYFARM_PROFILE": ""}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A scene whose plane shows a separate texture file (green) unlit."""
    return make_textured_scene(tmp_path_factory.mktemp("desk") / "proj" / "shot.blend")


def green(path) -> bool:
    red, green_, blue = Image.open(path).convert("RGB").getpixel((32, 32))
    return green_ > 120 and red < 60 and blue < 60


def test_the_node_runs_as_another_user_that_cannot_read_the_servers_data(farm, node_user):
    server, node = farm
    assert server.data_dir.stat().st_uid == 0 and server.data_dir.stat().st_mode & 0o777 == 0o700
    for path in (server.data_dir, server.data_dir / "secret.key", server.data_dir / "rayfarm.db"):
        if path.exists():
            assert not can_read(node_user, path), path
    process = psutil.Process(node.process.pid)
    assert process.uids().real == node_user.pw_uid
    token = node.token_file.read_text().strip()
    assert token not in " ".join(process.cmdline())  # the token came from its 0600 file, not the command line
    assert "--token-file" in process.cmdline()


def test_rayfarm_submit_over_tls_renders_a_textured_scene_on_the_remote_node(farm, artist, scene, tmp_path):
    server, node = farm
    shot, _texture = scene
    done = subprocess.run([PYTHON, "-m", "rayfarm", "submit", str(shot), "--wait", "--download", str(tmp_path / "out"),
                           "--json"], capture_output=True, text=True, timeout=120, env={**os.environ, **artist},
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{done.stderr}\nnode log:\n{node.log()[-3000:]}\nserver log:\n{server.log()[-2000:]}"
    result = json.loads(done.stdout)
    assert result["state"] == "done" and result["doneFrames"] == 1, result
    [frame] = [p for p in (tmp_path / "out").rglob("*.png")]
    assert green(frame), "the texture did not reach the node (Blender's missing-texture pink instead)"
    # the node fetched the scene and the texture through the API, under its own user
    assert "downloaded scene" in node.log() and f"result done accepted for task {result['taskId']}" in node.log()


def test_the_official_sdk_drives_the_farm_over_https_with_requests_ca_bundle(farm, artist, scene, rayvision_python,
                                                                             tmp_path):
    server, node = farm
    shot, texture = scene
    rayfarm("upload", shot, "--as", "D:/proj/shot.blend", env=artist)
    rayfarm("upload", texture, "--as", "D:/proj/tex/flat.png", env=artist)
    env = {"PATH": os.environ["PATH"], "RAYFARM_DOMAIN": server.url.removeprefix("https://"),
           "RAYFARM_ACCESS_ID": artist["RAYFARM_ACCESS_ID"], "RAYFARM_ACCESS_KEY": artist["RAYFARM_ACCESS_KEY"],
           "RAYFARM_TASK_JSON": json.dumps(TASK_JSON), "RAYFARM_UPLOAD_JSON": json.dumps(UPLOAD_JSON),
           "REQUESTS_CA_BUNDLE": str(server.ca), "PYTHONDONTWRITEBYTECODE": "1"}
    script = NODE_ONLY.with_name("official_https.py")
    done = subprocess.run([str(rayvision_python), str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, f"{done.stderr[-3000:]}\nnode log:\n{node.log()[-2000:]}"
    flow = json.loads(done.stdout.strip().splitlines()[-1])
    assert flow["statuses"][-1] == 25, flow
    assert [f["frameStatus"] for f in flow["frames"]["items"]] == [4], flow["frames"]
    rayfarm("download", str(flow["taskId"]), tmp_path / "frames", env=artist)
    [frame] = list((tmp_path / "frames").rglob("*.png"))
    assert green(frame)


def test_without_the_studio_ca_nothing_connects_and_each_says_what_to_do(farm, artist, node_user, tmp_path):
    server, node = farm
    untrusting = {**artist, "RAYFARM_CA_CERT": ""}
    listed = rayfarm("task", "list", env=untrusting, check=False)
    assert listed.returncode == 4, listed.stderr
    assert "not trusted" in listed.stderr and "--ca-cert" in listed.stderr, listed.stderr
    argv = node.argv()
    at = argv.index("--ca-cert")
    lone = as_user(node_user, argv[argv.index("--", 0) + 1:at] + argv[at + 2:] + ["--name", "untrusting"])
    refused = subprocess.run(lone, capture_output=True, text=True, env=node.env(), timeout=60, cwd=node.home)
    assert refused.returncode == 3, refused.stderr
    assert "not trusted" in refused.stderr and "--ca-cert" in refused.stderr, refused.stderr


def test_the_server_prints_the_command_a_node_runs_without_the_token(farm, node_user):
    """Its output is a log here (not a terminal): the command reads the token from a file."""
    server, node = farm
    [line] = [line.strip() for line in server.log().splitlines() if "rayfarm worker run" in line]
    assert line == (f"rayfarm worker run --server {server.url} --token-file worker-token "
                    f"--ca-cert {shlex.quote(str(server.ca))}")
    assert server.token() not in server.log()
