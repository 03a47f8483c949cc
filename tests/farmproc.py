"""Start real rayfarm processes (server, workers) on loopback for integration tests."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rayfarm(*args: str, env: dict | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "rayfarm", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=check)


@dataclass
class Credentials:
    user_id: int
    name: str
    access_id: str
    access_key: str


@dataclass
class FarmServer:
    data_dir: Path
    port: int
    extra_args: list[str] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def __post_init__(self) -> None:
        from tests.dbs import fresh_database_url

        url = self.env.get("RAYFARM_DATABASE_URL") or fresh_database_url()
        if url:
            self.env["RAYFARM_DATABASE_URL"] = url

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.domain}"

    def start(self, timeout: float = 30) -> "FarmServer":
        self.log_path = self.data_dir / f"server-{self.port}.log"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "rayfarm", "server", "--data-dir", str(self.data_dir), "--port", str(self.port),
             *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def create_user(self, name: str, *flags: str) -> Credentials:
        out = rayfarm("user", "create", name, "--data-dir", str(self.data_dir), "--json", *flags, env=self.env)
        data = json.loads(out.stdout)
        return Credentials(data["userId"], data["userName"], data["accessId"], data["accessKey"])

    def input_file(self, user: Credentials, local_path: str, content: bytes = b"scene") -> Path:
        """Place a file in the user's input storage where a local path maps (D:/a/b -> /D/a/b)."""
        from rayfarm.domain.paths import to_storage_path

        target = self.data_dir / "storage" / str(user.user_id) / "input" / to_storage_path(local_path).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return target
