"""Joining is one line, and the worker token never appears on a command line: `rayfarm up` starts its nodes
with the token in their environment (read back from /proc), `rayfarm worker-token` prints the command a
node runs (and running it joins), a token file must be private, and --token on the command line warns."""

import os
import shlex
import signal
import subprocess
import tomllib

import psutil

from tests.machines.support import PYTHON, make_certs, rayfarm
from tests.support.databases import fresh_database_url
from tests.support.processes import free_port, stop_process, wait_for


def test_rayfarm_up_over_tls_starts_nodes_without_the_token_in_their_arguments(tmp_path):
    certs = make_certs(tmp_path / "tls")
    data, port, config = tmp_path / "farm", free_port(), tmp_path / "config"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAYFARM_")}, "XDG_CONFIG_HOME": str(config)}
    url = fresh_database_url()
    if url:
        env["RAYFARM_DATABASE_URL"] = url
    log = tmp_path / "up.log"
    with open(log, "ab") as handle:
        up = subprocess.Popen([PYTHON, "-m", "rayfarm", "up", "--data-dir", str(data), "--port", str(port),
                               "--workers", "2", "--tls-cert", str(certs / "server.pem"), "--tls-key",
                               str(certs / "server.key")], stdout=handle, stderr=subprocess.STDOUT, env=env,
                              start_new_session=True)
    try:
        def nodes() -> list[psutil.Process]:
            found = [p for p in psutil.Process(up.pid).children() if "worker" in p.cmdline()]
            return found if len(found) == 2 and "rayfarm is up" in log.read_text() else []

        started = wait_for(nodes, 60, "rayfarm up and its two nodes", details=log.read_text)
        token = rayfarm("worker-token", "--data-dir", data, env=env).stdout.strip()
        for node in started:
            with open(f"/proc/{node.pid}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode()
            assert token not in cmdline and "--token" not in cmdline, cmdline
            assert f"https://127.0.0.1:{port}" in cmdline and str(certs / "ca.pem") in cmdline
            assert node.environ()["RAYFARM_WORKER_TOKEN"] == token
        profile = tomllib.loads((config / "rayfarm" / "config.toml").read_text())["profiles"]["local"]
        assert profile["server"] == f"https://127.0.0.1:{port}" and profile["ca_cert"] == str(certs / "ca.pem")
        # the profile is all a command needs over https: it trusts the studio CA through it
        wait_for(lambda: rayfarm("worker", "list", "--json", env=env, check=False).stdout.count('"name"') == 2, 30,
                 "both nodes to be listed over https", details=log.read_text)
    finally:
        stop_process(up, signal.SIGINT, timeout=30)


def test_the_command_worker_token_prints_joins_a_node(farm, tmp_path):
    done = rayfarm("worker-token", "--data-dir", farm.data_dir, "--url", farm.url, env=farm.env)
    token = done.stdout.strip()
    [line] = [line.strip() for line in done.stderr.splitlines() if "rayfarm worker run" in line]
    words = shlex.split(line)
    assert words[0] == f"RAYFARM_WORKER_TOKEN={token}" and words[1:6] == ["rayfarm", "worker", "run", "--server", farm.url]
    assert "--token" not in words
    name, value = words[0].split("=", 1)
    log = tmp_path / "joined.log"
    with open(log, "ab") as handle:
        node = subprocess.Popen([PYTHON, "-m", *words[1:], "--name", "joined", "--work-dir", str(tmp_path / "work")],
                                stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, name: value},
                                start_new_session=True)
    try:
        wait_for(lambda: "registered as joined" in log.read_text(), 60, "the node to join", details=log.read_text)
    finally:
        stop_process(node)


def test_a_token_file_must_be_private_and_a_token_in_the_arguments_warns(farm, tmp_path):
    token_file = tmp_path / "worker-token"
    token_file.write_text("wt_example\n")
    os.chmod(token_file, 0o644)
    loose = rayfarm("worker", "run", "--server", "http://127.0.0.1:9", "--token-file", token_file, check=False)
    assert loose.returncode == 2 and f"chmod 600 {token_file}" in loose.stderr, loose.stderr
    os.chmod(token_file, 0o600)
    token_file.write_text("two words\n")
    bad = rayfarm("worker", "run", "--server", "http://127.0.0.1:9", "--token-file", token_file, check=False)
    assert bad.returncode == 2 and "alone" in bad.stderr, bad.stderr
    # --token still works, with a warning (a wrong one here: the farm refuses it and the node stops saying so)
    shown = rayfarm("worker", "run", "--server", farm.url, "--token", "wt_wrong", "--work-dir", tmp_path / "work",
                    check=False, timeout=60)
    assert "--token shows the worker token to every user of this machine (ps)" in shown.stderr, shown.stderr
    assert shown.returncode == 3 and "worker token is missing or wrong" in shown.stderr, shown.stderr
