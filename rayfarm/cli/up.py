"""`rayfarm up`: server + N local render nodes + a default user, in one command.

The local nodes get the worker token in their environment, never in their arguments (which every user of
the machine sees). With ``--host 0.0.0.0`` (and TLS) nodes on other machines join with the command it prints.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from rich.console import Console

from rayfarm import tls
from rayfarm.cli import join
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


def _start(args: list[str], log_name: str, settings: Settings, env: dict | None = None) -> subprocess.Popen:
    logs = settings.data_dir / "up-logs"
    logs.mkdir(exist_ok=True)
    handle = open(logs / log_name, "ab")
    return subprocess.Popen([sys.executable, "-m", "rayfarm", *args], stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, **(env or {})})


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


def _save_profile(name: str, url: str, creds: dict, ca_cert: str | None = None) -> str:
    """Point profile ``name`` at this farm, so `rayfarm task list` etc. work at once; a sentence for the user."""
    from rayfarm.cli import profiles

    try:
        path = profiles.save(profiles.Profile(name, url, creds["accessId"], creds["accessKey"], ca_cert))
        default = profiles.default_name(profiles.load(path)) == name
    except (profiles.ProfileError, OSError) as exc:
        return f"profile {name!r} not written ({exc})"
    return f"profile {name!r} in {path}" + ("" if default else f" (use --profile {name})")


def _healthy(url: str, verify) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def run_farm(settings: Settings, endpoint: join.Endpoint, workers: int, profile: str = "local") -> int:
    port = endpoint.port
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

    ca = str(endpoint.ca_cert) if endpoint.ca_cert else None
    # the local nodes: on this machine, through loopback (or the --url a TLS certificate names)
    url = endpoint.public_url.rstrip("/") if endpoint.public_url and endpoint.tls_cert else endpoint.local_url
    try:
        verify = tls.verify_for(url, ca)
    except tls.TrustError as exc:
        console.print(str(exc), style="red", markup=False)
        return 2
    common = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    shared = [arg for root in settings.shared_roots for arg in ("--shared-root", str(root))]
    served = ["--host", endpoint.host, "--port", str(port)]
    if endpoint.tls_cert and endpoint.tls_key:
        served += ["--tls-cert", str(endpoint.tls_cert), "--tls-key", str(endpoint.tls_key)]
    if endpoint.public_url:
        served += ["--url", endpoint.public_url]
    processes = [_start(["server", *common, *served, *shared], "server.log", settings)]
    node_env = {join.TOKEN_ENV: token}  # never in the nodes' arguments: `ps` shows those to every user
    node_args: list[list[str]] = [[]]
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(url, verify):
            if processes[0].poll() is not None or time.monotonic() > deadline:
                console.print(f"[red]The server did not start; see {settings.data_dir / 'up-logs' / 'server.log'}.[/red]")
                return 1
            time.sleep(0.2)
        host = socket.gethostname().split(".")[0] or "node"
        for index in range(workers):
            args = ["worker", "run", "--server", url, "--name", f"{host}-{index + 1}",
                    "--work-dir", str(settings.data_dir / "nodes" / str(index + 1)), *(["--ca-cert", ca] if ca else [])]
            node_args.append(args)
            processes.append(_start(args, f"worker-{index + 1}.log", settings, node_env))
        console.print(f"[bold green]rayfarm is up[/bold green] at {endpoint.url} with {workers} render node(s).")
        console.print(f"  user:       {creds['userName']} (id {creds['userId']})")
        console.print(f"  access id:  {creds['accessId']}")
        console.print(f"  access key: {creds['accessKey']}")
        console.print(f"  saved in    {settings.data_dir / 'credentials.json'}", soft_wrap=True, highlight=False)
        # the server serves the web dashboard at its root; it signs in with the same access id and key
        console.print(f"Dashboard: {endpoint.url}/", soft_wrap=True, highlight=False)
        console.print(f"  sign in with access id {creds['accessId']} and the access key above", soft_wrap=True,
                      highlight=False)
        if profile:
            console.print(f"  rayfarm commands use {_save_profile(profile, url, creds, ca)}", soft_wrap=True,
                          highlight=False)
        domain = url.split("://", 1)[1]
        console.print(f"  Renderbus SDK: RayvisionAPI(access_id, access_key, domain=\"{domain}\", "
                      f"platform=\"{settings.platform}\", protocol=\"{endpoint.scheme}\")"
                      + (f" with REQUESTS_CA_BUNDLE={ca}" if ca else ""), soft_wrap=True, highlight=False)
        warning = join.exposure_warning(endpoint)
        if warning:
            console.print(warning, style="yellow", markup=False, soft_wrap=True)
        if not tls.is_loopback(endpoint.host):
            for line in join.join_lines(endpoint.url, token, endpoint.ca_cert, True):
                console.print(line, markup=False, highlight=False, soft_wrap=True)
        console.print(f"Logs of the server and the nodes: {settings.data_dir / 'up-logs'}", soft_wrap=True, highlight=False)
        console.print("Press Ctrl-C to stop the farm.")
        while not stopping:
            if processes[0].poll() is not None:
                console.print("[red]The server stopped unexpectedly; stopping the nodes.[/red]")
                return 1
            for index, process in enumerate(processes[1:], start=1):
                if process.poll() is not None:
                    console.print(f"[yellow]Node {index} exited ({process.returncode}); restarting it.[/yellow]")
                    processes[index] = _start(node_args[index], f"worker-{index}.log", settings, node_env)
            time.sleep(0.5)
        console.print("Stopping the farm...")
        return 0
    finally:
        _stop(processes)
