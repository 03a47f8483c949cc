"""`rayfarm doctor` checks a machine as a node or a server and says what to fix; its exit code says whether
something is wrong."""

import http.server
import json
import os
import threading
import time

import pytest

from tests.machines.support import TlsServer, make_certs, rayfarm
from tests.support.processes import free_port


@pytest.fixture(scope="module")
def tls_farm(tmp_path_factory):
    server = TlsServer(tmp_path_factory.mktemp("doctor") / "farm", make_certs(tmp_path_factory.mktemp("tls"))).start()
    yield server
    server.stop()


def doctor(*args, env: dict | None = None) -> tuple[int, dict[str, dict]]:
    done = rayfarm("doctor", *args, "--json", env=env, check=False)
    report = json.loads(done.stdout)
    assert report["ok"] is (done.returncode == 0), done.stdout
    return done.returncode, {f["topic"]: f for f in report["findings"]}


def test_a_node_that_trusts_the_farm_and_has_its_token_is_ready(tls_farm, tmp_path):
    code, found = doctor("--server", tls_farm.url, "--ca-cert", tls_farm.ca, "--work-dir", tmp_path / "node",
                         env={"RAYFARM_WORKER_TOKEN": tls_farm.token()})
    assert code == 0, found
    assert {topic: f["level"] for topic, f in found.items()} == {
        "reach": "ok", "clock": "ok", "token": "ok", "blender": "ok", "confine": "ok", "disk": "ok", "gpu": "ok"}
    assert "certificate trusted" in found["reach"]["text"] and "Blender 3." in found["blender"]["text"]


def test_a_node_without_the_ca_or_with_a_wrong_token_is_told_what_to_fix(tls_farm, tmp_path):
    code, found = doctor("--server", tls_farm.url, "--work-dir", tmp_path / "node", env={"RAYFARM_CA_CERT": ""})
    assert code == 1 and found["trust"]["level"] == "FAIL" and "--ca-cert" in found["trust"]["text"]
    code, found = doctor("--server", tls_farm.url, "--ca-cert", tls_farm.ca, "--work-dir", tmp_path / "node",
                         env={"RAYFARM_WORKER_TOKEN": "wt_not_this_farms"})
    assert code == 1 and found["token"]["level"] == "FAIL" and "rayfarm worker-token" in found["token"]["text"]


def test_a_server_checks_its_folders_database_and_certificate(tls_farm, tmp_path):
    certs = tls_farm.certs
    args = ("--data-dir", tls_farm.data_dir, "--tls-cert", certs / "server.pem", "--tls-key", certs / "server.key")
    code, found = doctor(*args, env=tls_farm.env)
    assert code == 0, found
    assert found["database"]["level"] == "ok" and "current" in found["database"]["text"]
    assert "localhost" in found["tls"]["text"] and "127.0.0.1" in found["tls"]["text"]
    os.chmod(tls_farm.data_dir, 0o755)
    try:
        code, found = doctor(*args, env=tls_farm.env)
    finally:
        os.chmod(tls_farm.data_dir, 0o700)
    assert code == 1 and found["data dir"]["level"] == "FAIL" and "chmod 700" in found["data dir"]["text"]
    assert found["secret"]["level"] == "ok"


class SkewedFarm(http.server.BaseHTTPRequestHandler):
    """A /healthz whose clock is 400 s behind: beyond the signing window."""

    def do_GET(self):  # noqa: N802 - the handler's name
        body = json.dumps({"status": "ok", "time": time.time() - 400}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_clock_outside_the_signing_window_is_a_problem(tmp_path):
    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), SkewedFarm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, found = doctor("--server", f"http://127.0.0.1:{port}", "--role", "server", "--data-dir", tmp_path / "d")
    finally:
        server.shutdown()
    assert code == 1 and found["clock"]["level"] == "FAIL", found
    assert "ahead of the server's" in found["clock"]["text"] and "NTP" in found["clock"]["text"]
