"""A farm of many machines, on one: a server over TLS whose data folder is root's alone, and render nodes that
run as another OS user with the node install only (tests/machines/node_only.py), sharing no path with it.

Everything listens and connects on loopback only. Nodes run under ``setpriv`` as a throwaway system user made
for the test (and removed after it), with ``--no-new-privs`` as systemd's ``NoNewPrivileges=yes`` would.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from rayfarm.tls import client_context
from tests.support.databases import fresh_database_url
from tests.support.processes import free_port, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[2]
NODE_ONLY = Path(__file__).with_name("node_only.py")
PYTHON = sys.executable


def rayfarm(*args: str | Path, env: dict | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([PYTHON, "-m", "rayfarm", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"rayfarm {' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def make_certs(folder: Path) -> Path:
    """A studio CA and a server certificate for localhost / 127.0.0.1 (`rayfarm tls self-signed`)."""
    rayfarm("tls", "self-signed", folder, "--host", "localhost", "--ip", "127.0.0.1")
    return folder


@contextmanager
def os_user(prefix: str = "rfnode") -> Iterator[pwd.struct_passwd]:
    """A throwaway system user (no home, no shell), deleted afterwards."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)  # only that user's leftovers
        subprocess.run(["userdel", name], capture_output=True)


def as_user(user: pwd.struct_passwd, argv: list[str]) -> list[str]:
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--no-new-privs",
            "--", *argv]


def can_read(user: pwd.struct_passwd, path: Path) -> bool:
    """Whether ``user`` can list (a folder) or read (a file) ``path``."""
    argv = ["ls", str(path)] if path.is_dir() else ["head", "-c1", str(path)]
    return subprocess.run(as_user(user, argv), capture_output=True).returncode == 0


@dataclass
class TlsServer:
    """`rayfarm server --tls-cert ... --tls-key ...` on a free loopback port (two API processes on PostgreSQL); its
    data dir is root's, 0700."""

    data_dir: Path
    certs: Path
    port: int = field(default_factory=free_port)
    extra: list[str] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        url = fresh_database_url()
        if url:  # PostgreSQL: as a studio runs it, several API processes behind the one TLS port
            self.env["RAYFARM_DATABASE_URL"] = url
            self.extra = ["--processes", "2", *self.extra]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)

    @property
    def ca(self) -> Path:
        return self.certs / "ca.pem"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> TlsServer:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "rayfarm", "server", "--data-dir", str(self.data_dir), "--port", str(self.port),
                 "--tls-cert", str(self.certs / "server.pem"), "--tls-key", str(self.certs / "server.key"),
                 *self.extra], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                start_new_session=True)

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited:\n{self.log()}")
            try:
                return httpx.get(f"{self.url}/healthz", verify=client_context(self.ca), timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the TLS server to answer", details=self.log)
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def admin(self, *args: str | Path) -> subprocess.CompletedProcess:
        """A server-side command on this farm's data dir and database."""
        return rayfarm(*args, "--data-dir", self.data_dir, env=self.env)

    def token(self) -> str:
        return self.admin("worker-token").stdout.strip()

    def user(self, name: str, *flags: str) -> dict:
        return json.loads(self.admin("user", "create", name, "--json", *flags).stdout)


@dataclass
class RemoteNode:
    """A render node as another machine would run it: its own OS user, the node install only, the worker token
    in a 0600 file of its own, the studio CA, nothing of the server's folders."""

    server: TlsServer
    user: pwd.struct_passwd
    name: str
    extra: list[str] = field(default_factory=list)
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rayfarm-node-")))
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        os.chmod(self.home, 0o755)
        os.chown(self.home, self.user.pw_uid, self.user.pw_gid)
        self.token_file.write_text(self.server.token() + "\n")
        os.chmod(self.token_file, 0o600)
        shutil.copy(self.server.ca, self.ca)
        os.chmod(self.ca, 0o644)
        self.work_dir.mkdir(mode=0o700)
        for path in (self.token_file, self.work_dir):
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    token_file = property(lambda self: self.home / "worker-token")
    ca = property(lambda self: self.home / "ca.pem")
    work_dir = property(lambda self: self.home / "work")
    log_path = property(lambda self: self.home / "node.log")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def argv(self) -> list[str]:
        return as_user(self.user, [PYTHON, str(NODE_ONLY), "worker", "run", "--server", self.server.url,
                                   "--token-file", str(self.token_file), "--ca-cert", str(self.ca), "--name", self.name,
                                   "--work-dir", str(self.work_dir), *self.extra])

    def env(self) -> dict[str, str]:
        """A node machine's environment: nothing of the test's (no database URL, no farm variables)."""
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8",
                "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}

    def start(self, wait: bool = True) -> RemoteNode:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                            start_new_session=True, cwd=self.home)
        if wait:
            def registered() -> bool:
                if self.process.poll() is not None:
                    raise AssertionError(f"node {self.name} exited ({self.process.returncode}):\n{self.log()}")
                return "registered as" in self.log()

            wait_for(registered, 60, f"node {self.name} to register", details=self.log)
        return self

    def stop(self) -> None:
        stop_process(self.process, signal.SIGTERM)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
