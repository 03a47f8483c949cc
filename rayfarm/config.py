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
    rate_limit: float = 0  # requests per second per key (0 = off)
    lease_seconds: float = 10.0  # a node silent this long loses its chunks
    heartbeat_seconds: float = 3.0  # idle node's heartbeat interval
    busy_heartbeat_seconds: float = 1.0  # heartbeat interval while rendering (stop reaches it this fast)
    sweep_seconds: float = 1.0  # how often leases and time limits are checked

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def storage(self) -> Path:
        return self.data_dir / "storage"


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)
