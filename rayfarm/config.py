"""Where the farm keeps its data, and the settings a server process runs with."""

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 8765


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data dir: the argument, else $RAYFARM_DATA_DIR, else ~/.rayfarm. Created owner-only."""
    chosen = Path(path or os.environ.get("RAYFARM_DATA_DIR") or Path.home() / ".rayfarm").expanduser().resolve()
    chosen.mkdir(parents=True, exist_ok=True, mode=0o700)
    return chosen


def write_private(path: Path, content: str) -> None:
    """Write a file that only its owner can read (credentials, secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    os.chmod(path, 0o600)


def farm_secret(directory: Path) -> bytes:
    """The farm's secret (encrypts access keys at rest): $RAYFARM_SECRET or <data>/secret.key."""
    env = os.environ.get("RAYFARM_SECRET")
    if env:
        return env.encode()
    path = directory / "secret.key"
    if not path.exists():
        from cryptography.fernet import Fernet

        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(Fernet.generate_key())
    return path.read_bytes().strip()


@dataclass
class Settings:
    data_dir: Path
    database_url: str
    shared_roots: list[Path] = field(default_factory=list)
    time_window: int = 300  # accepted clock skew of signed requests, seconds
    max_body: int = 8 * 1024 * 1024  # bytes of a JSON request body
    platform: str = "2"
    rate_limit: float = 1000.0  # requests per second per access id / node / address (0 = off); server/ratelimit.py
    rate_burst: int = 2000  # requests a key may send at once before the rate applies
    # a node silent this long loses its chunks ($RAYFARM_LEASE_SECONDS, e.g. for nodes behind a flaky link)
    lease_seconds: float = field(default_factory=lambda: _env_seconds("RAYFARM_LEASE_SECONDS", 10.0))
    heartbeat_seconds: float = 3.0  # idle node's heartbeat interval
    busy_heartbeat_seconds: float = 1.0  # heartbeat interval while rendering (stop reaches it this fast)
    sweep_seconds: float = 1.0  # how often leases and time limits are checked
    # reverse proxies (CIDRs) whose X-Forwarded-For / -Proto are believed; none by default (rayfarm/app.py)
    trusted_proxies: list[str] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def storage(self) -> Path:
        return self.data_dir / "storage"


def _env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment, else ``default``."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {text!r}.") from None
    if not 0 < value <= 3600:
        raise ValueError(f"{name} must be between 0 and 3600 seconds, not {text!r}.")
    return value


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)
