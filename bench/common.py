"""Shared pieces of the benchmarks: a real server process, users, signed clients, fake workers, figures.

Everything runs on 127.0.0.1. A benchmark opens a :class:`Bench` (a temporary folder, and on
PostgreSQL a fresh database), starts what it needs through it and leaves through its ``with``:
process groups are killed, the database is dropped and the folder removed, whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
PG_SCRIPT = ROOT / "scripts" / "pg.sh"
PG_PORT = int(os.environ.get("RAYFARM_PG_PORT", "54329"))


# ---------------------------------------------------------------- small helpers

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest-rank on sorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def stop_group(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM the process group of a process started with start_new_session; SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def machine() -> dict:
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def emit(name: str, figures: dict) -> None:
    """Print the benchmark's one JSON line."""
    if os.environ.get("BENCH_WHATIF"):
        figures = {"whatif": os.environ["BENCH_WHATIF"], **figures}
    print(json.dumps({"bench": name, **figures, "machine": machine()}, separators=(", ", ": ")), flush=True)


def note(text: str) -> None:
    """Progress for the human watching (stderr: stdout carries only the JSON line)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--server-processes", type=int, default=1,
                        help="uvicorn processes of the server (PostgreSQL only; `rayfarm server --processes`)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) for inspection")
    return parser


def task_json(frames: str, per_chunk: int = 1, command: list[str] | None = None, software: str = "command",
              scene: str | None = None, **common) -> str:
    info = {"frames_per_task": str(per_chunk), "pre_frames": "000", "stop_after_test": "2"}
    data: dict[str, Any] = {"software_config": {"cg_name": software, "cg_version": "3.4"}, "task_info": info,
                            "scene_info_render": {"common": {"frames": frames, **common}}}
    if software == "command":
        data["additional_info"] = {"command": command or ["true"]}
    if scene:
        info["input_cg_file"] = scene
    return json.dumps(data)


# ---------------------------------------------------------------- CPU accounting

class CpuMeter:
    """CPU seconds spent by groups of processes between start() and stop() (user + system)."""

    def __init__(self, **groups: Callable[[], list[int]]):
        # "ours": this process and every descendant (server, workers, helpers) alive at start or stop;
        # "others" = the whole machine minus ours: other people's work that shared the cores.
        groups.setdefault("ours", lambda: psutil_tree(os.getpid()) + (postgres_pids() if "postgres" in groups else []))
        self.groups = groups
        self._start: dict[str, dict[int, float]] = {}
        self.seconds: dict[str, float] = {}

    @staticmethod
    def _times(pids: list[int]) -> dict[int, float]:
        out = {}
        for pid in pids:
            try:
                t = psutil.Process(pid).cpu_times()  # children_*: reaped children (renders, commands)
                out[pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return out

    @staticmethod
    def _machine() -> float:
        t = psutil.cpu_times()
        return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)

    def start(self) -> None:
        self._wall = time.monotonic()
        self._start = {name: self._times(pids()) for name, pids in self.groups.items()}
        self._machine_start = self._machine()

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._wall
        for name, pids in self.groups.items():
            now = self._times(pids())
            before = self._start.get(name, {})
            self.seconds[name] = round(sum(v - before.get(pid, 0.0) for pid, v in now.items()), 3)
        busy = self._machine() - self._machine_start
        self.seconds["machine"] = round(busy, 3)  # every process on the machine (others' tests included)
        self.seconds["wall"] = round(wall, 3)
        others = max(0.0, busy - self.seconds["ours"])
        self.seconds["others_share"] = round(others / (wall * (os.cpu_count() or 1)), 3) if wall > 0 else 0.0
        return dict(self.seconds)


def wait_quiet(max_wait: float | None = None, threshold: float = 0.15, sample: float = 2.0) -> float:
    """Wait (at most ``max_wait`` s) until the machine's CPU use is below ``threshold`` (share of all cores)
    over ``sample`` s, outside this process tree: others run tests on the same 2 cores. Returns the wait."""
    if max_wait is None:
        max_wait = float(os.environ.get("BENCH_QUIET_MAX", "240"))
    began = time.monotonic()
    while True:
        meter = CpuMeter()
        meter.start()
        time.sleep(sample)
        figures = meter.stop()
        if figures["others_share"] < threshold or time.monotonic() - began >= max_wait:
            waited = time.monotonic() - began
            if waited > sample + 0.5:
                note(f"waited {waited:.0f} s for a quiet machine (others now {figures['others_share']:.0%})")
            return round(waited, 1)


def self_pids() -> list[int]:
    return [os.getpid()]


def postgres_pids() -> list[int]:
    found = []
    for proc in psutil.process_iter(["name", "username"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["name"] and proc.info["name"].startswith("postgres"):
                found.append(proc.pid)
    return found


# ---------------------------------------------------------------- the farm under test

@dataclass
class Credentials:
    user_id: int
    name: str
    access_id: str
    access_key: str


@dataclass
class Server:
    bench: Bench
    port: int
    processes: int = 1
    process: subprocess.Popen | None = None

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.domain}"

    @property
    def log_path(self) -> Path:
        return self.bench.tmp / f"server-{self.port}.log"

    def start(self, timeout: float = 60) -> Server:
        # BENCH_WHATIF=patch,...: the server runs with experimental patches (bench/whatif.py), code unchanged
        module = "bench.whatif" if os.environ.get("BENCH_WHATIF") else "rayfarm"
        args = [PYTHON, "-m", module, "server", "--data-dir", str(self.bench.data_dir), "--port", str(self.port),
                *self.bench.db_args()]
        if self.processes > 1:
            args += ["--processes", str(self.processes)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                            start_new_session=True, env=self.bench.env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy:\n{self.log()[-3000:]}")

    def pids(self) -> list[int]:
        """The server process and its children (uvicorn workers with --processes)."""
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root.pid, *(p.pid for p in root.children(recursive=True))]
        except psutil.Error:
            return []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_group(self.process)


@dataclass
class Worker:
    """A real `rayfarm worker` process in its own session."""

    server: Server
    name: str
    process: subprocess.Popen | None = None
    extra: tuple[str, ...] = ()  # more `rayfarm worker` options

    @property
    def log_path(self) -> Path:
        return self.server.bench.tmp / f"worker-{self.name}.log"

    def start(self) -> Worker:
        work_dir = self.server.bench.tmp / "nodes" / self.name
        work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            module = "bench.whatif" if os.environ.get("BENCH_WHATIF") else "rayfarm"  # what-if patches, as the server
            self.process = subprocess.Popen(
                [PYTHON, "-m", module, "worker", "--server", self.server.url, "--token", self.server.bench.token(),
                 "--name", self.name, "--work-dir", str(work_dir), *self.extra],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True, env=self.server.bench.env())
        return self

    def registered(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited:\n{self.log_path.read_text(errors='replace')[-2000:]}")
        return self.log_path.exists() and b"registered as" in self.log_path.read_bytes()

    def stop(self) -> None:
        stop_group(self.process)


class Bench:
    """One benchmark run's world: temp folder, database, server and worker processes; all gone on exit."""

    def __init__(self, database: str = "sqlite", keep: bool = False, name: str = "bench"):
        self.database = database
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix=f"rayfarm-{name}-"))
        self.data_dir = self.tmp / "data"
        self.data_dir.mkdir()
        self.database_url: str | None = None
        self._pg_db: str | None = None
        self._pg_base: str | None = None
        self._pg_started = False
        self.servers: list[Server] = []
        self.workers: list[Worker] = []
        self._token: str | None = None
        self._children: list[subprocess.Popen] = []

    # ---- lifecycle
    def __enter__(self) -> Bench:
        try:
            if self.database == "postgres":
                self._make_pg_database()
            else:
                self.database_url = f"sqlite:///{self.data_dir / 'rayfarm.db'}"
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for worker in self.workers:  # all at once: each may take a second to kill its renders
            if worker.process is not None and worker.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.process.pid, signal.SIGTERM)
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.stop()
        for child in self._children:
            with contextlib.suppress(Exception):
                stop_group(child)
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()
        if self._pg_db:
            with contextlib.suppress(Exception):
                self._drop_pg_database()
        if self._pg_started:
            with contextlib.suppress(Exception):
                subprocess.run(["bash", str(PG_SCRIPT), "stop"], cwd=ROOT, capture_output=True, timeout=60)
        if self.keep:
            note(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- database
    def _make_pg_database(self) -> None:
        from sqlalchemy import create_engine

        if not port_open(PG_PORT):
            self._pg_started = True  # stop it again on the way out: this run started it
        out = subprocess.run(["bash", str(PG_SCRIPT), "start"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, check=True)
        self._pg_base = out.stdout.strip().splitlines()[-1]
        name = "rf_bench_" + uuid.uuid4().hex[:12]
        engine = create_engine(self._pg_base, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        engine.dispose()
        self._pg_db = name
        self.database_url = self._pg_base.rsplit("/", 1)[0] + "/" + name

    def _drop_pg_database(self) -> None:
        from sqlalchemy import create_engine

        engine = create_engine(self._pg_base, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {self._pg_db} WITH (FORCE)")
        engine.dispose()
        self._pg_db = None

    def db_args(self) -> list[str]:
        return ["--database-url", self.database_url] if self.database_url else []

    def env(self) -> dict:
        env = {**os.environ}
        env.pop("RAYFARM_DATABASE_URL", None)
        env.pop("RAYFARM_DATA_DIR", None)
        return env

    def farm(self):
        """An in-process Farm on the same data dir and database (store-level set-up without HTTP)."""
        from rayfarm.config import Settings
        from rayfarm.server.farm import Farm

        farm = Farm(Settings(data_dir=self.data_dir, database_url=self.database_url))
        farm.db.migrate()
        return farm

    # ---- processes
    def rayfarm(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([PYTHON, "-m", "rayfarm", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, check=True, env=self.env())

    def start_server(self, processes: int = 1) -> Server:
        server = Server(self, free_port(), processes)
        self.servers.append(server)
        return server.start()

    def token(self) -> str:
        if self._token is None:
            self._token = self.rayfarm("worker-token", "--data-dir", str(self.data_dir), *self.db_args()).stdout.strip()
        return self._token

    def create_user(self, name: str = "bench", *flags: str) -> Credentials:
        out = self.rayfarm("user", "create", name, "--data-dir", str(self.data_dir), *self.db_args(), "--json", *flags)
        data = json.loads(out.stdout)
        return Credentials(data["userId"], data["userName"], data["accessId"], data["accessKey"])

    def start_workers(self, server: Server, count: int, prefix: str = "node", timeout: float = 60,
                      extra: tuple[str, ...] = ()) -> list[Worker]:
        started = [Worker(server, f"{prefix}{i:02d}", extra=extra).start() for i in range(count)]
        self.workers.extend(started)
        wait_until(lambda: all(w.registered() for w in started), timeout, f"{count} workers to register", 0.1)
        return started

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        """A helper process in its own session, killed on exit if still running."""
        child = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self._children.append(child)
        return child


# ---------------------------------------------------------------- signed Renderbus clients

def sdk(server: Server, user: Credentials, **options):
    """Our SDK, pointed at the server."""
    from rayfarm.sdk import RayfarmAPI

    return RayfarmAPI(user.access_id, user.access_key, domain=server.domain, **options)


def submit(api, frames: str, per_chunk: int = 1, **kwargs) -> tuple[int, dict]:
    """createTask + taskJsonFile + submit through the SDK; (task id, seconds of each step)."""
    t0 = time.perf_counter()
    task_id = api.task.task_id
    t1 = time.perf_counter()
    api.task.upload_task_json(task_id, task_json(frames, per_chunk, **kwargs))
    t2 = time.perf_counter()
    api.task.submit_task(task_id)
    t3 = time.perf_counter()
    return task_id, {"create_s": round(t1 - t0, 4), "task_json_s": round(t2 - t1, 4), "submit_s": round(t3 - t2, 4)}


class SignedAsync:
    """Signed Renderbus calls over an httpx.AsyncClient (headers from the SDK's Connect.signed_headers)."""

    def __init__(self, server: Server, user: Credentials, client: httpx.AsyncClient):
        from rayfarm.sdk.connect import Connect

        self.connect = Connect(user.access_id, user.access_key, domain=server.domain)
        self.connect.close()  # only its signing is used
        self.base = server.url
        self.client = client

    async def post(self, path: str, body: dict | None = None) -> Any:
        body = body or {}
        headers = self.connect.signed_headers(path, body)
        response = await self.client.post(self.base + path, content=json.dumps(body).encode(), headers=headers)
        payload = response.json()
        if response.status_code != 200 or payload.get("code") != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code} {str(payload)[:300]}")
        return payload.get("data")


def async_client(connections: int = 1, timeout: float = 60.0) -> httpx.AsyncClient:
    """An httpx client for ONE sequential user: httpcore's pool gets slower than linear when many
    requests share it (64 loops on one pool: ~40 req/s against ~700 with a client each), so every
    simulated worker or user gets a client of its own."""
    global _SSL
    if _SSL is None:  # building one per client costs ~40 ms (CA bundle): 1000 clients would take 40 s
        import ssl

        _SSL = ssl.create_default_context()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=timeout, verify=_SSL)


_SSL = None


class RawResponse:
    def __init__(self, status_code: int, content: bytes):
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}: {self.text[:200]}")


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, for ONE sequential user, same calls as
    httpx.AsyncClient (get/post with content and headers). It spends a fraction of httpx's CPU per
    request, so the load generator stops being what is measured (``--client raw``)."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
            self._reader = self._writer = None

    async def get(self, url: str, headers: dict | None = None, timeout: float | None = None) -> RawResponse:
        return await self.request("GET", url, b"", headers, timeout)

    async def post(self, url: str, content: bytes = b"", headers: dict | None = None,
                   timeout: float | None = None) -> RawResponse:
        return await self.request("POST", url, content, headers, timeout)

    async def request(self, method: str, url: str, content: bytes, headers: dict | None,
                      timeout: float | None) -> RawResponse:
        return await asyncio.wait_for(self._request(method, url, content, headers or {}), timeout or self.timeout)

    async def _request(self, method: str, url: str, content: bytes, headers: dict) -> RawResponse:
        headers = dict(headers)
        rest = url.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        path = "/" + path
        if self._writer is None:
            host, _, port = hostport.partition(":")
            self._reader, self._writer = await asyncio.open_connection(host, int(port or 80))
        lines = [f"{method} {path} HTTP/1.1", f"Host: {headers.pop('Host', hostport)}",
                 f"Content-Length: {len(content)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + content)
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            body = await self._reader.readexactly(length) if length else b""
        except BaseException:
            await self.aclose()
            raise
        if close:
            await self.aclose()
        return RawResponse(status, body)


def make_client(kind: str):
    """One sequential user's HTTP client: "httpx" (httpx.AsyncClient) or "raw" (RawClient)."""
    return RawClient() if kind == "raw" else async_client()


# ---------------------------------------------------------------- fake workers (the real worker protocol)

@dataclass
class FakeWorker:
    """A render node that renders nothing: register, then lease and complete over the native protocol."""

    client: httpx.AsyncClient
    base: str
    token: str
    name: str
    software: tuple[str, ...] = ("command", "blender")
    worker_id: int | None = None
    session: str | None = None
    headers: dict = field(default_factory=dict)
    heartbeat_seconds: float = 3.0
    busy_heartbeat_seconds: float = 1.0
    retries: int = 0

    def __post_init__(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    async def _post(self, name: str, body: dict, timeout: float | None = None) -> dict:
        extra = {"timeout": timeout} if timeout else {}
        content = json.dumps(body).encode()
        for attempt in range(3):  # a real node retries too: the server may close an idle keep-alive connection
            try:
                response = await self.client.post(f"{self.base}/v1/worker/{name}", content=content,
                                                  headers=self.headers, **extra)
                break
            except (httpx.TransportError, ConnectionError, asyncio.IncompleteReadError):
                if attempt == 2:
                    raise
                self.retries += 1
        if response.status_code != 200:
            raise RuntimeError(f"{name}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()

    async def register(self) -> None:
        answer = await self._post("register", {
            "name": self.name, "hostname": self.name, "slots": 1, "cores": 1, "memory": 0, "gpu": "",
            "software": {s: "" for s in self.software}, "tags": [], "version": "bench"})
        self.worker_id, self.session = answer["workerId"], answer["session"]
        self.heartbeat_seconds = float(answer.get("heartbeatSeconds") or 3.0)
        self.busy_heartbeat_seconds = float(answer.get("busyHeartbeatSeconds") or 1.0)

    async def lease(self, count: int = 1, wait: float = 0.0) -> list[dict]:
        answer = await self._post("lease", {"workerId": self.worker_id, "session": self.session, "max": count,
                                            "wait": wait}, timeout=wait + 60)
        return answer["leases"]

    async def heartbeat(self, running: list[str] = ()) -> dict:
        answer = await self._post("heartbeat", {"workerId": self.worker_id, "session": self.session,
                                                "running": [{"leaseId": lease, "progress": 50} for lease in running]})
        # as a real node: the server stretches the intervals on a big farm
        self.heartbeat_seconds = float(answer.get("heartbeatSeconds") or self.heartbeat_seconds)
        self.busy_heartbeat_seconds = float(answer.get("busyHeartbeatSeconds") or self.busy_heartbeat_seconds)
        return answer

    async def complete(self, lease_id: str, result: str = "done") -> bool:
        answer = await self._post("complete", {"workerId": self.worker_id, "session": self.session,
                                               "leaseId": lease_id, "result": result, "executeSeconds": 0.0})
        return bool(answer["accepted"])

    async def complete_and_lease(self, lease_id: str, result: str = "done", count: int = 1) -> tuple[bool, list[dict]]:
        """complete with ``next``: the result and the node's next leases in one call, as the real agent does."""
        answer = await self._post("complete", {"workerId": self.worker_id, "session": self.session,
                                               "leaseId": lease_id, "result": result, "executeSeconds": 0.0,
                                               "next": count})
        return bool(answer["accepted"]), answer.get("leases") or []


async def keep_alive(workers: list[FakeWorker], client, interval: float = 3.0) -> None:
    """Heartbeat every fake worker every ``interval`` s (a silent node is declared lost after leaseSeconds)."""
    pause = interval / max(1, len(workers))
    while True:
        for worker in workers:
            if worker.worker_id is not None:
                with contextlib.suppress(Exception):
                    await FakeWorker(client, worker.base, worker.token, worker.name, worker_id=worker.worker_id,
                                     session=worker.session).heartbeat()
            await asyncio.sleep(pause)


async def timed_loop(concurrency: int, seconds: float, warmup: float, step: Callable[[int], Awaitable[int]],
                     meter: CpuMeter | None = None) -> dict:
    """Run ``step(i)`` in ``concurrency`` loops; count what it returns during ``seconds`` after ``warmup``."""
    state = {"counting": False, "count": 0, "errors": 0, "stop": False}
    latencies: list[float] = []

    async def loop(index: int) -> None:
        while not state["stop"]:
            began = time.perf_counter()
            try:
                done = await step(index)
            except Exception as exc:  # counted, and the loop backs off a little
                state["errors"] += 1
                if state["errors"] <= 3:
                    note(f"error: {exc!r}"[:300])
                await asyncio.sleep(0.05)
                continue
            if state["counting"]:
                state["count"] += done
                latencies.append(time.perf_counter() - began)

    tasks = [asyncio.create_task(loop(i)) for i in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        if meter:
            meter.start()
        state["counting"] = True
        began = time.perf_counter()
        await asyncio.sleep(seconds)
        state["counting"] = False
        elapsed = time.perf_counter() - began
        cpu = meter.stop() if meter else None
    finally:
        state["stop"] = True
        await asyncio.wait(tasks, timeout=70)
        for task in tasks:
            task.cancel()
    result = {"count": state["count"], "seconds": round(elapsed, 3), "rate": round(state["count"] / elapsed, 1),
              "errors": state["errors"], "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99))}
    if cpu:
        result["cpu_s"] = cpu
    return result


def summary(values: list[float]) -> dict:
    if not values:
        return {}
    return {"n": len(values), "p50_ms": ms(percentile(values, 50)), "p99_ms": ms(percentile(values, 99)),
            "mean_ms": ms(statistics.fmean(values)), "max_ms": ms(max(values))}


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """SIGALRM after ``seconds``: every benchmark is bounded in time even if something hangs."""
    def fire(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds:g} s; aborted")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(main: Callable[[], None]) -> None:
    """Entry point: SIGTERM/SIGINT unwind through the Bench's cleanup like any error."""
    def stop(signum, frame):
        raise SystemExit(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, stop)
    main()


def psutil_tree(pid: int) -> list[int]:
    """A process and all its descendants (pids)."""
    try:
        root = psutil.Process(pid)
        return [pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.Error:
        return []


@contextlib.contextmanager
def profiled(server: Server, output: str | None) -> Iterator[None]:
    """py-spy the server process (and its children) while the block runs, if ``output`` is given.

    Writes collapsed stacks (flamegraph input) to ``output``; :func:`top_functions` ranks them.
    With BENCH_PROFILE_GIL=1 only the thread holding the GIL is sampled (where Python CPU goes)."""
    if not output:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    rate = os.environ.get("BENCH_PROFILE_RATE", "100")
    child = subprocess.Popen([spy, "record", "--pid", str(server.process.pid), "--format", "raw", "--rate", rate,
                              "--output", output, "--subprocesses",
                              *(["--gil"] if os.environ.get("BENCH_PROFILE_GIL") else [])],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(0.5)  # attach before the measured work starts
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stop_group(child)


def top_functions(collapsed: str, limit: int = 25, contains: str = "") -> list[tuple[str, float]]:
    """Inclusive share of samples per function in a py-spy collapsed-stack file (each frame once per stack)."""
    totals: dict[str, int] = {}
    samples = 0
    for line in Path(collapsed).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or contains not in stack:
            continue
        n = int(count)
        samples += n
        for frame in set(stack.split(";")):
            totals[frame] = totals.get(frame, 0) + n
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:limit]
    return [(name, round(100.0 * n / samples, 1)) for name, n in ranked]
