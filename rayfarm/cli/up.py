"""`rayfarm up`: server + N local render nodes + a default user, in one command."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from rich.console import Console

from rayfarm.config import Settings, write_private
from rayfarm.server.farm import Farm
from rayfarm.store import users as users_store
from rayfarm.store.workers import worker_token

console = Console()
DEFAULT_USER = "artist"


def _credentials(farm: Farm, settings: Settings) -> dict:
    path = settings.data_dir / "credentials.json"
    if path.exists():
        return json.loads(path.read_text())
    with farm.db.write() as conn:
        user = users_store.by_name(conn, DEFAULT_USER)
        if user is None:
            user, key = users_store.create(conn, farm.keys, DEFAULT_USER, allow_commands=True, is_admin=True)
        else:
            user, key = users_store.rotate_key(conn, farm.keys, DEFAULT_USER)
    data = {"userId": user.id, "userName": user.name, "accessId": user.access_id, "accessKey": key}
    write_private(path, json.dumps(data, indent=2) + "\n")
    return data


def _start(args: list[str], log_name: str, settings: Settings) -> subprocess.Popen:
    logs = settings.data_dir / "up-logs"
    logs.mkdir(exist_ok=True)
    handle = open(logs / log_name, "ab")
    return subprocess.Popen([sys.executable, "-m", "rayfarm", *args], stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _save_profile(name: str, url: str, creds: dict) -> str:
    """Point profile ``name`` at this farm, so `rayfarm task list` etc. work at once; a sentence for the user."""
    from rayfarm.cli import profiles

    try:
        path = profiles.save(profiles.Profile(name, url, creds["accessId"], creds["accessKey"]))
        default = profiles.default_name(profiles.load(path)) == name
    except (profiles.ProfileError, OSError) as exc:
        return f"profile {name!r} not written ({exc})"
    return f"profile {name!r} in {path}" + ("" if default else f" (use --profile {name})")


def run_farm(settings: Settings, port: int, workers: int, profile: str = "local") -> int:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            console.print(f"[red]Port {port} is in use; stop what runs there or pass --port.[/red]")
            return 2
    farm = Farm(settings)
    farm.db.migrate()
    creds = _credentials(farm, settings)
    with farm.db.write() as conn:
        token = worker_token(conn, farm.keys)
    farm.db.dispose()

    url = f"http://127.0.0.1:{port}"
    common = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    shared = [arg for root in settings.shared_roots for arg in ("--shared-root", str(root))]
    processes = [_start(["server", *common, "--port", str(port), *shared], "server.log", settings)]
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        deadline = time.monotonic() + 60
        while True:
            if processes[0].poll() is not None or time.monotonic() > deadline:
                console.print(f"[red]The server did not start; see {settings.data_dir / 'up-logs' / 'server.log'}.[/red]")
                return 1
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        host = socket.gethostname().split(".")[0] or "node"
        for index in range(workers):
            processes.append(_start(["worker", "run", "--server", url, "--token", token, "--name", f"{host}-{index + 1}",
                                     "--work-dir", str(settings.data_dir / "nodes" / str(index + 1))],
                                    f"worker-{index + 1}.log", settings))
        console.print(f"[bold green]rayfarm is up[/bold green] at {url} with {workers} render node(s).")
        console.print(f"  user:       {creds['userName']} (id {creds['userId']})")
        console.print(f"  access id:  {creds['accessId']}")
        console.print(f"  access key: {creds['accessKey']}")
        console.print(f"  saved in    {settings.data_dir / 'credentials.json'}")
        # the server serves the web dashboard at its root; it signs in with the same access id and key
        console.print(f"Dashboard: {url}/", soft_wrap=True, highlight=False)
        console.print(f"  sign in with access id {creds['accessId']} and the access key above", soft_wrap=True,
                      highlight=False)
        if profile:
            console.print(f"  rayfarm commands use {_save_profile(profile, url, creds)}")
        console.print(f"  Renderbus SDK: RayvisionAPI(access_id, access_key, domain=\"127.0.0.1:{port}\", "
                      f"platform=\"{settings.platform}\", protocol=\"http\")")
        console.print(f"Logs of the server and the nodes: {settings.data_dir / 'up-logs'}", soft_wrap=True, highlight=False)
        console.print("Press Ctrl-C to stop the farm.")
        while not stopping:
            if processes[0].poll() is not None:
                console.print("[red]The server stopped unexpectedly; stopping the nodes.[/red]")
                return 1
            for index, process in enumerate(processes[1:], start=1):
                if process.poll() is not None:
                    console.print(f"[yellow]Node {index} exited ({process.returncode}); restarting it.[/yellow]")
                    processes[index] = _start(process.args[3:], f"worker-{index}.log", settings)
            time.sleep(0.5)
        console.print("Stopping the farm...")
        return 0
    finally:
        _stop(processes)
