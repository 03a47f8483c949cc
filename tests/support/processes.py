"""Real rayfarm processes on loopback: `rayfarm server`, `rayfarm worker`, `rayfarm up`; waiting and stopping.

Every process runs in its own session (a process group of its own), logs to a file, and is stopped
through its group: SIGTERM (or the signal given), SIGKILL if it lingers.
"""

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
import psutil

from tests.support.databases import ROOT, fresh_database_url

PYTHON = sys.executable
# For nodes whose command tasks run this venv's Python or write records outside their job's folder (the
# tests' own observations, with host process ids): by default a node confines its render jobs, and a
# confined job sees neither (tests/security/test_confinement.py tests confinement itself).
UNCONFINED_COMMANDS = "--unconfined-commands"
T = TypeVar("T")
# The variables a user's shell may have that would change which farm and user the CLI commands use.
CLIENT_VARS = ("RAYFARM_SERVER", "RAYFARM_ACCESS_ID", "RAYFARM_ACCESS_KEY", "RAYFARM_PROFILE", "RAYFARM_DATA_DIR")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.1,
             details: Callable[[], str] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` seconds pass (AssertionError).

    The timeout is a deadline for a hang, not a measurement: give what normally takes a second 30 s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{details()}" if details else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)


def signal_process(process: subprocess.Popen | None, sig: int) -> None:
    """Send ``sig`` to the process group of a process started in its own session, if it still runs."""
    if process is not None and process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass


def stop_process(process: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Signal the process group of a process started in its own session; SIGKILL it if it lingers."""
    if process is None or process.poll() is not None:
        return
    signal_process(process, sig)
    wait_process(process, timeout)


def wait_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """Wait for a signalled process; SIGKILL its group if it has not ended after ``timeout`` seconds."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        signal_process(process, signal.SIGKILL)
        process.wait()


def gone(pid: int) -> bool:
    """The process has exited (a zombie counts: its parent has not collected it yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def alive(pid: int) -> bool:
    return not gone(pid)


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (pids); [] once it is gone."""
    try:
        root = psutil.Process(pid)
        return [pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.Error:
        return []


def processes_with(text: str, program: str = "") -> list[psutil.Process]:
    """Live (not zombie) processes whose command line contains `text` (and whose program is named `program`)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] == psutil.STATUS_ZOMBIE or text not in " ".join(cmdline):
            continue
        if program and os.path.basename(cmdline[0]) != program:
            continue
        found.append(proc)
    return found


def rayfarm(*args: str, env: dict | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m rayfarm ARGS`, its output captured."""
    return subprocess.run([PYTHON, "-m", "rayfarm", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=check, cwd=ROOT)


@dataclass
class Credentials:
    user_id: int
    name: str
    access_id: str
    access_key: str


@dataclass
class FarmServer:
    """A `rayfarm server` process (``module`` may be another entry point, e.g. bench.whatif) with its data dir.

    Its database: ``env["RAYFARM_DATABASE_URL"]`` if given, else a fresh PostgreSQL database when the tests
    run on PostgreSQL, else SQLite in the data dir."""

    data_dir: Path
    port: int
    extra_args: list[str] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    module: str = "rayfarm"
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    workers: list["FarmWorker"] = field(default_factory=list)
    _token: str | None = None

    def __post_init__(self) -> None:
        url = self.env.get("RAYFARM_DATABASE_URL") or fresh_database_url()
        if url:
            self.env["RAYFARM_DATABASE_URL"] = url

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.domain}"

    @property
    def database_url(self) -> str:
        from rayfarm.store.db import sqlite_url

        return self.env.get("RAYFARM_DATABASE_URL") or sqlite_url(self.data_dir)

    def start(self, timeout: float = 60) -> "FarmServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{self.port}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", self.module, "server", "--data-dir", str(self.data_dir), "--port", str(self.port),
                 *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}, cwd=ROOT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """/metrics, parsed: (sample name, its sorted label pairs) -> value."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.url}/metrics", timeout=30).text
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text) for sample in family.samples}

    def pids(self) -> list[int]:
        """The server process and its children (uvicorn processes with --processes)."""
        return process_tree(self.process.pid) if self.process is not None else []

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the render nodes started with :meth:`start_worker` (all at once), then the server."""
        for worker in self.workers:
            signal_process(worker.process, sig)  # each may take a second to kill its renders
        for worker in self.workers:
            if worker.process is not None:
                wait_process(worker.process)
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
        """`rayfarm user create` (a process of its own; farms.make_users makes many at once, in this process)."""
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

    def start(self, wait: bool = True, timeout: float = 60) -> "FarmWorker":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()
            # the token in the environment, as `rayfarm up` and the join line pass it (never on a command line)
            self.process = subprocess.Popen(
                [PYTHON, "-m", self.server.module, "worker", "--server", self.server.url,
                 "--name", self.name, "--work-dir", str(self.work_dir), *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
                env={**os.environ, **self.server.env, "RAYFARM_WORKER_TOKEN": self.server.worker_token()})
        if wait:
            self.wait_registered(timeout)
        return self

    def registered(self) -> bool:
        """This run of the node has registered with the server (RuntimeError if it has exited)."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited early ({self.process.returncode}):\n{self.log()[-3000:]}")
        with open(self.log_path, "rb") as handle:
            handle.seek(self._log_start)
            return b"registered as" in handle.read()

    def wait_registered(self, timeout: float = 60) -> None:
        wait_for(self.registered, timeout, f"worker {self.name} to register", details=self.log)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        stop_process(self.process, sig, timeout)


@dataclass
class UpFarm:
    """`rayfarm up` (a server and its nodes in one command) in its own session, under ``root``: the data dir
    ``root/farm``, its CLI profile in ``root/config`` (XDG_CONFIG_HOME), what it prints in ``root/up.log``."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    env: dict = field(default_factory=dict)  # of `rayfarm up` and of the commands run against it (see start)
    creds: dict = field(default_factory=dict)  # credentials.json of the first user

    @property
    def data_dir(self) -> Path:
        return self.root / "farm"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_home(self) -> Path:
        return self.root / "config"  # XDG_CONFIG_HOME: `rayfarm up` writes its `local` CLI profile there

    @property
    def up_log(self) -> Path:
        return self.root / "up.log"  # what `rayfarm up` printed (stdout and stderr)

    def start(self, workers: int, timeout: float = 60) -> "UpFarm":
        env = {key: value for key, value in os.environ.items() if key not in CLIENT_VARS}
        env["XDG_CONFIG_HOME"] = str(self.config_home)
        url = fresh_database_url()
        if url:
            env["RAYFARM_DATABASE_URL"] = url
        self.env = env
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.up_log, "ab") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "rayfarm", "up", "--data-dir", str(self.data_dir), "--port", str(self.port),
                 "--workers", str(workers)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                start_new_session=True)
        wait_for(lambda: "rayfarm is up" in self.up_log.read_text(errors="replace"), timeout, "rayfarm up to start",
                 details=self.logs)
        self.creds = json.loads((self.data_dir / "credentials.json").read_text())
        return self

    def logs(self) -> str:
        """What a failed wait shows: the end of what `rayfarm up` printed and of its processes' logs."""
        paths = [self.up_log, *sorted((self.data_dir / "up-logs").glob("*.log"))]
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in paths if p.exists())

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> None:
        stop_process(self.process, sig, timeout)
