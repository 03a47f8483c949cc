"""Where a farm listens and how other machines reach it: its URL, the command a new render node runs, and the
warning for plain HTTP beyond this machine. Shared by `rayfarm server`, `rayfarm up` and `rayfarm worker-token`.

The join command carries the worker token in the node's environment, never in its arguments: a process's
arguments are visible to every user of its machine (ps), its environment only to its owner.
"""

from __future__ import annotations

import shlex
import socket
import ssl
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from rayfarm.tls import is_loopback

WILDCARDS = ("0.0.0.0", "::", "")
TOKEN_ENV = "RAYFARM_WORKER_TOKEN"


class ListenError(Exception):
    """The TLS files cannot be served; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    """What a server listens on, and the URL other machines use for it."""

    host: str
    port: int
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ca_cert: Path | None = None  # the CA clients need to trust (the studio CA), if any
    public_url: str | None = None  # --url: how nodes and artists reach the server

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def local_url(self) -> str:
        """The server's URL from this machine (local nodes, the health check)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The server's URL for other machines: --url, else the address it listens on, else this machine's name."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if is_loopback(self.host):
            return self.local_url
        host = socket.getfqdn() if self.host in WILDCARDS else self.host
        return f"{self.scheme}://{'[' + host + ']' if ':' in host else host}:{self.port}"


def check_tls(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """The certificate and key a server serves, checked: both or neither, readable, matching (ListenError)."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ListenError("Give both --tls-cert FILE and --tls-key FILE (`rayfarm tls self-signed DIR` makes a pair).")
    cert, key = cert.expanduser().resolve(), key.expanduser().resolve()
    for path in (cert, key):
        if not path.is_file():
            raise ListenError(f"{path} does not exist; give the server's certificate and key files.")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except PermissionError as exc:
        raise ListenError(f"{exc.filename} cannot be read by this user; the server's user must own the key "
                          f"(chmod 600).") from None
    except (ssl.SSLError, OSError) as exc:
        raise ListenError(f"The certificate {cert} and key {key} cannot be served together ({exc}); give the "
                          f"server certificate (PEM) and its own private key.") from None
    return cert, key


def key_warning(key: Path) -> str | None:
    """A sentence when the TLS key can be read by other users of this machine."""
    mode = key.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return f"Warning: the TLS key {key} is readable by other users of this machine; chmod 600 {key}."
    return None


def default_ca(cert: Path | None) -> Path | None:
    """The studio CA next to a certificate made by `rayfarm tls self-signed` (ca.pem in the same folder)."""
    if cert is None:
        return None
    candidate = cert.parent / "ca.pem"
    return candidate if candidate.is_file() and candidate != cert else None


def exposure_warning(endpoint: Endpoint) -> str | None:
    """What plain HTTP beyond this machine exposes (None: TLS, or loopback only)."""
    if endpoint.tls_cert or is_loopback(endpoint.host):
        return None
    where = "every address of this machine" if endpoint.host in WILDCARDS else endpoint.host
    return (f"Warning: serving plain HTTP on {where}, port {endpoint.port}. Access keys never travel (requests are "
            f"HMAC-signed), but task data, scenes, textures, rendered frames, dashboard sessions and the worker "
            f"token do, in clear: anyone on the network can read them, and a node's token lets them take and "
            f"fake renders. Serve HTTPS: rayfarm tls self-signed DIR, then --tls-cert DIR/server.pem "
            f"--tls-key DIR/server.key.")


def join_command(url: str, token: str | None, ca_cert: Path | None = None) -> str:
    """The one line a new render node runs: the token in its environment (``token`` None: from a file)."""
    parts = [f"{TOKEN_ENV}={shlex.quote(token)}"] if token else []
    parts += ["rayfarm", "worker", "run", "--server", shlex.quote(url)]
    if not token:
        parts += ["--token-file", "worker-token"]
    if ca_cert:
        parts += ["--ca-cert", shlex.quote(str(ca_cert))]
    return " ".join(parts)


def join_lines(url: str, token: str, ca_cert: Path | None, show_token: bool) -> list[str]:
    """How a render node on another machine joins: the command, and what it needs beside it."""
    lines = ["Render nodes join with this command on their machine (the token goes in the environment, never "
             "on the command line):", "  " + join_command(url, token if show_token else None, ca_cert)]
    if not show_token:
        lines.append("  where worker-token is a file (chmod 600) holding the output of `rayfarm worker-token` "
                     "on this machine.")
    if ca_cert:
        lines.append(f"  Copy {ca_cert} to the same path on each node (and give it to artists: --ca-cert, "
                     f"REQUESTS_CA_BUNDLE for the official SDK).")
    lines.append("  As a service: deploy/rayfarm-node.service, with the token in its EnvironmentFile; "
                 "see docs/many-machines.md.")
    return lines


def say(lines: list[str] | str | None) -> None:
    """Print to stderr (the server's own output), nothing for None."""
    if lines:
        for line in [lines] if isinstance(lines, str) else lines:
            print(line, file=sys.stderr, flush=True)
