"""What `rayfarm doctor` checks, one function per concern; each returns findings that say what to fix.

The node's checks import nothing of the server's (a node machine has the node install only).
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from rayfarm import tls

OK, WARN, FAIL = "ok", "warn", "FAIL"
GIB = 1024**3
SIGNING_WINDOW = 300  # seconds a signed request's time may differ from the server's (docs/design.md, 10)


@dataclass(frozen=True)
class Finding:
    level: str  # OK, WARN or FAIL
    topic: str
    text: str


def clock(offset: float, window: float = SIGNING_WINDOW) -> Finding:
    """``offset``: this machine's clock minus the server's, seconds."""
    skew = abs(offset)
    said = f"this machine's clock is {skew:.1f} s {'ahead of' if offset > 0 else 'behind'} the server's"
    if skew > window:
        return Finding(FAIL, "clock", f"{said}: signed requests more than {window} s off are refused. Synchronise "
                                      f"both clocks (systemd-timesyncd or chrony, from the same NTP server).")
    if skew > window / 10:
        return Finding(WARN, "clock", f"{said} (refused beyond {window} s); synchronise both clocks with NTP.")
    return Finding(OK, "clock", f"{said} (within the {window} s signing window)")


def reach(url: str, ca_cert: str | None) -> tuple[list[Finding], httpx.Client | None]:
    """Reach the server's /healthz (certificate checked over https), and compare clocks."""
    base = url.rstrip("/")
    try:
        client = httpx.Client(base_url=base, timeout=10, verify=tls.verify_for(base, ca_cert))
    except tls.TrustError as exc:
        return [Finding(FAIL, "trust", str(exc))], None
    found = []
    if base.startswith("http:") and not tls.is_loopback(httpx.URL(base).host):
        found.append(Finding(WARN, "tls", f"{base} is plain HTTP to another machine: task data, files and the "
                                          f"worker token travel in clear. Serve HTTPS (docs/many-machines.md)."))
    try:
        sent = time.time()
        response = client.get("/healthz")
        received = time.time()
    except httpx.HTTPError as exc:
        client.close()
        problem = tls.certificate_problem(exc)
        if problem:
            return [*found, Finding(FAIL, "trust", problem)], None
        return [*found, Finding(FAIL, "reach", f"cannot reach {base} ({type(exc).__name__}: {exc}): check that the "
                                               f"server runs, the address, and that the firewall lets this machine "
                                               f"reach its port.")], None
    try:
        server_time = float(response.json()["time"])
    except (ValueError, KeyError, TypeError):
        client.close()
        return [*found, Finding(FAIL, "reach", f"{base}/healthz answered HTTP {response.status_code} but not as a "
                                               f"rayfarm server does; check the URL (and any proxy in between).")], None
    how = "TLS, certificate trusted" if base.startswith("https:") else "plain HTTP"
    found.append(Finding(OK, "reach", f"{base} answered ({how})"))
    found.append(clock((sent + received) / 2 - server_time))
    return found, client


def token(client: httpx.Client, value: str | None) -> Finding:
    """Whether the server accepts the worker token (a call it refuses for its body, never for a good token:
    nothing changes on the farm)."""
    if not value:
        return Finding(WARN, "token", "no worker token given (--token-file FILE or $RAYFARM_WORKER_TOKEN): not "
                                      "checked; `rayfarm worker-token` prints it on the server's machine.")
    try:
        response = client.post("/v1/worker/heartbeat", json={}, headers={"Authorization": f"Bearer {value}"})
    except httpx.HTTPError as exc:
        return Finding(FAIL, "token", f"the token could not be checked ({exc}).")
    if response.status_code == 401:
        return Finding(FAIL, "token", "the server refuses this worker token: copy it again from `rayfarm "
                                      "worker-token` on the server's machine.")
    if response.status_code == 429:
        return Finding(WARN, "token", "the server is rate-limiting this address; check the token again later.")
    return Finding(OK, "token", "the server accepts this worker token")


def space(folder: Path, what: str, fail_below: int = 2 * GIB, warn_below: int = 20 * GIB) -> Finding:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    said = f"{free / GIB:.1f} GiB free for {what} ({folder})"
    if free < fail_below:
        return Finding(FAIL, "disk", f"only {said}: free space or move it to a bigger disk.")
    if free < warn_below:
        return Finding(WARN, "disk", f"{said}; scenes, textures and frames need room.")
    return Finding(OK, "disk", said)


def node(work_dir: Path) -> list[Finding]:
    """Blender, bubblewrap, disk space for the cache, GPUs."""
    from rayfarm.worker.capabilities import gpus
    from rayfarm.worker.confine import ConfinementError, probe
    from rayfarm.worker.renderers.blender import BlenderRenderer

    found = []
    version = BlenderRenderer.detect_version()
    program = shutil.which(BlenderRenderer.executable)
    if version:
        found.append(Finding(OK, "blender", f"Blender {version} ({program})"))
    else:
        found.append(Finding(FAIL, "blender", "Blender is not found on PATH (or does not run): install it "
                                              "(Debian: apt-get install blender, or an official build linked as "
                                              "/usr/local/bin/blender); the node offers no Blender without it."))
    try:
        sandbox = probe(work_dir)
        if sandbox.python:
            found.append(Finding(OK, "confine", f"render jobs run confined ({sandbox.program}); a command task's "
                                                f"chunks share a sandbox per slot (its launcher: {sandbox.python})"))
        else:
            found.append(Finding(WARN, "confine", f"render jobs run confined ({sandbox.program}), but each command "
                                                  f"chunk needs a sandbox of its own (slower): the launcher of "
                                                  f"command sessions needs a Python 3 in /usr (Debian: apt-get "
                                                  f"install python3)."))
    except ConfinementError as exc:
        found.append(Finding(FAIL, "confine", f"render jobs cannot be confined: {exc}. Install bubblewrap and allow "
                                              f"unprivileged user namespaces (sysctl user.max_user_namespaces > 0); "
                                              f"in a systemd unit do not set PrivateUsers=, RestrictNamespaces=, "
                                              f"ProtectKernelTunables= or ProtectProc= (deploy/rayfarm-node.service)."))
    except OSError as exc:
        found.append(Finding(FAIL, "confine", f"the work dir {work_dir} cannot be used: {exc}"))
    found.append(space(work_dir, "the node's cache"))
    found.append(Finding(OK, "gpu", gpus() or "no GPU found (CPU rendering)"))
    return found


def private(path: Path, what: str, topic: str) -> Finding | None:
    if not path.exists():
        return None
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Finding(FAIL, topic, f"{what} {path} is open to other users; chmod {'700' if path.is_dir() else '600'} "
                                    f"{path}.")
    return Finding(OK, topic, f"{what} {path} is owner-only")


def server(data_dir: Path, database_url: str) -> list[Finding]:
    """The data dir and secret (owner-only), the database (answers, schema current), disk space for storage."""
    from rayfarm.store.health import schema_state

    found = [f for f in (private(data_dir, "the data dir", "data dir"),
                         private(data_dir / "secret.key", "the secret key", "secret")) if f is not None]
    if not os.environ.get("RAYFARM_SECRET") and not (data_dir / "secret.key").is_file():
        found.append(Finding(WARN, "secret", f"no {data_dir / 'secret.key'} yet (made at the first start): once "
                                              f"made, back it up (rayfarm backup): access keys are encrypted with it."))
    try:
        current, head = schema_state(database_url)
    except ConnectionError as exc:
        found.append(Finding(FAIL, "database", f"the database does not answer ({exc}): check --database-url "
                                               f"(or $RAYFARM_DATABASE_URL) and that PostgreSQL runs."))
    else:
        if current == head:
            found.append(Finding(OK, "database", f"the database answers; schema {head} (current)"))
        else:
            found.append(Finding(WARN, "database", f"the database's schema is {current or 'empty'}, this rayfarm's "
                                                   f"is {head}: the server migrates it when it starts (back up first)."))
    found.append(space(data_dir / "storage", "the farm's storage"))
    return found


def certificate(cert: Path | None, key: Path | None) -> list[Finding]:
    """The server's TLS certificate: serves with its key, valid, not expiring soon."""
    from rayfarm.cli import join

    try:
        checked = join.check_tls(cert, key)
    except join.ListenError as exc:
        return [Finding(FAIL, "tls", str(exc))]
    if checked is None:
        return []  # no TLS files given: nothing to check
    cert, key = checked
    from cryptography import x509

    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    days = (loaded.not_valid_after_utc.timestamp() - time.time()) / 86400
    try:
        names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        listed = ", ".join(str(getattr(n, "value", n)) for n in names)
    except x509.ExtensionNotFound:
        listed = "no alternative names: clients will refuse it"
    level = FAIL if days < 0 else WARN if days < 30 else OK
    found = [Finding(level, "tls", f"{cert} is valid {days:.0f} more days, for {listed}"
                     + ("; renew it (rayfarm tls self-signed DIR issues a new one)" if level != OK else ""))]
    warning = join.key_warning(key)
    if warning:
        found.append(Finding(FAIL, "tls", warning.removeprefix("Warning: ")))
    return found
