"""Start real rayfarm processes (server, workers) on loopback for integration tests."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

PYTHON = sys.executable
# For nodes whose command tasks run this venv's Python or write records outside their job's folder (the
# tests' own observations, with host process ids): by default a node confines its render jobs, and a
# confined job sees neither (tests/security/test_confinement.py tests confinement itself).
UNCONFINED_COMMANDS = "--unconfined-commands"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.1,
             details: Callable[[], str] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{details()}" if details else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)


def stop_process(process: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Signal the process group of a process started in its own session; SIGKILL it if it lingers."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


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
    workers: list["FarmWorker"] = field(default_factory=list)
    _token: str | None = None

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
        """Stop the render nodes started with :meth:`start_worker`, then the server."""
        for worker in self.workers:
            worker.stop()
        stop_process(self.process, sig)

    def worker_token(self) -> str:
        if self._token is None:
            self._token = rayfarm("worker-token", "--data-dir", str(self.data_dir), env=self.env).stdout.strip()
        return self._token

    def start_worker(self, name: str, *extra_args: str, wait: bool = True) -> "FarmWorker":
        """Start a real `rayfarm worker` process; with ``wait``, return once it has registered."""
        worker = FarmWorker(self, name, list(extra_args))
        self.workers.append(worker)
        worker.start(wait=wait)
        return worker

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


@dataclass
class FarmWorker:
    """A `python -m rayfarm worker` process in its own session, with its own --work-dir and log file."""

    server: FarmServer
    name: str
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None
    _log_start: int = 0  # where this run's lines begin in the log file (a restart appends)

    @property
    def work_dir(self) -> Path:
        return self.server.data_dir / "nodes" / self.name

    @property
    def log_path(self) -> Path:
        return self.server.data_dir / f"worker-{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, wait: bool = True, timeout: float = 30) -> "FarmWorker":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self._log_start = log.tell()
        self.process = subprocess.Popen(
            [PYTHON, "-m", "rayfarm", "worker", "--server", self.server.url, "--token", self.server.worker_token(),
             "--name", self.name, "--work-dir", str(self.work_dir), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.server.env}, start_new_session=True)
        log.close()
        if wait:
            self.wait_registered(timeout)
        return self

    def registered(self) -> bool:
        """This run of the node has registered with the server."""
        with open(self.log_path, "rb") as handle:
            handle.seek(self._log_start)
            return b"registered as" in handle.read()

    def wait_registered(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited early ({self.process.returncode}):\n{self.log()}")
            return self.registered()

        wait_for(ready, timeout, f"worker {self.name} to register", details=self.log)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        stop_process(self.process, sig, timeout)
