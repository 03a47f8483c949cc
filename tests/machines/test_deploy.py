"""The example systemd units in deploy/: valid for systemd (systemd-analyze verify), their commands valid for
rayfarm, restarted on failure as their own users, the token from a root-only file, and the node's hardening
free of the options that break bubblewrap."""

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.machines.support import PYTHON, ROOT, rayfarm

DEPLOY = ROOT / "deploy"
PROGRAM = "/opt/rayfarm/bin/rayfarm"
# Each hides part of /proc or forbids what bubblewrap does (user namespaces, mount, pivot_root, netlink).
BREAK_BUBBLEWRAP = ("PrivateUsers", "RestrictNamespaces", "ProtectKernelTunables", "ProtectKernelLogs", "ProtectProc",
                    "ProcSubset", "SystemCallFilter", "CapabilityBoundingSet", "MemoryDenyWriteExecute")


def unit(name: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string((DEPLOY / name).read_text())
    return {section: dict(parser[section]) for section in parser.sections()}


@pytest.mark.parametrize("name", ["rayfarm-server.service", "rayfarm-node.service"])
def test_the_unit_is_valid_and_its_command_is_rayfarms(name, tmp_path):
    program = shutil.which("rayfarm") or str(Path(PYTHON).with_name("rayfarm"))
    (tmp_path / name).write_text((DEPLOY / name).read_text().replace(PROGRAM, program))
    verified = subprocess.run(["systemd-analyze", "verify", str(tmp_path / name)], capture_output=True, text=True)
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
    service = unit(name)["Service"]
    assert service["Restart"] == "on-failure" and service["User"] not in ("root", "")
    words = shlex.split(service["ExecStart"])
    assert words[0] == PROGRAM and "--token" not in words
    # every option of the command line is one rayfarm knows (click refuses unknown ones before --help)
    checked = rayfarm(*words[1:], "--help", check=False)
    assert checked.returncode == 0, checked.stderr


def test_the_node_unit_keeps_bubblewrap_working_and_reads_the_token_from_a_file():
    service = unit("rayfarm-node.service")["Service"]
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert not set(service) & set(BREAK_BUBBLEWRAP), set(service) & set(BREAK_BUBBLEWRAP)
    assert "AF_NETLINK" in service["RestrictAddressFamilies"]
    assert service["EnvironmentFile"] == "/etc/rayfarm/node.env"
    example = (DEPLOY / "node.env.example").read_text()
    assert "RAYFARM_WORKER_TOKEN=" in example and "chmod 600" in example
