"""What every user command shares: credentials (flags, environment, profiles), exit codes, errors, JSON output.

Credentials, first found wins, each of server / access id / access key / CA certificate on its own:
1. ``--server``, ``--access-id``, ``--access-key``, ``--ca-cert``;
2. the profile named with ``--profile``;
3. ``RAYFARM_SERVER``, ``RAYFARM_ACCESS_ID``, ``RAYFARM_ACCESS_KEY``, ``RAYFARM_CA_CERT``;
4. the profile named by ``RAYFARM_PROFILE``, else the config file's default profile.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any, NoReturn
from urllib.parse import urlparse

import httpx
import typer
from rich.console import Console

from rayfarm import tls
from rayfarm.cli import profiles
from rayfarm.sdk import RayfarmAPI
from rayfarm.sdk.errors import RayfarmAPIError, RayfarmConnectionError, RayfarmError, reword

out = Console()
err = Console(stderr=True)


class Exit(IntEnum):
    """Exit codes scripts can rely on."""

    OK = 0
    ERROR = 1  # something on this machine failed (a file, Blender)
    USAGE = 2  # bad arguments, missing credentials, a bad profile or config file
    REFUSED = 3  # the farm refused the call (its Renderbus code and message are printed)
    UNREACHABLE = 4  # the farm could not be reached or did not answer
    TASK_FAILED = 5  # the task ended failed, with failed frames, or abandoned
    TASK_STOPPED = 6  # the task stopped or paused and waits for someone to act


Server = Annotated[str | None, typer.Option("--server", help="Farm URL, e.g. http://127.0.0.1:8765 "
                                                             "(or $RAYFARM_SERVER, or the profile's).")]
AccessId = Annotated[str | None, typer.Option("--access-id", help="Your access id (or $RAYFARM_ACCESS_ID).")]
AccessKey = Annotated[str | None, typer.Option("--access-key", help="Your access key (or $RAYFARM_ACCESS_KEY).")]
ProfileName = Annotated[str | None, typer.Option("--profile", help="Profile in ~/.config/rayfarm/config.toml "
                                                                   "(or $RAYFARM_PROFILE; default: the file's default).")]
CaCert = Annotated[str | None, typer.Option("--ca-cert", help="Over https: a CA certificate to trust besides the "
                                                               "system's (or $RAYFARM_CA_CERT, or the profile's).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts (nothing else on stdout).")]

ENV = {"server": "RAYFARM_SERVER", "access_id": "RAYFARM_ACCESS_ID", "access_key": "RAYFARM_ACCESS_KEY",
       "ca_cert": "RAYFARM_CA_CERT"}
FLAGS = {"server": "--server", "access_id": "--access-id", "access_key": "--access-key"}  # needed ones


# The farm's sentences name the API route that helps; on the command line, the command that does it.
COMMANDS = {
    "getTaskList": "`rayfarm task list`",
    "queryTaskInfo": "`rayfarm task show {id}`",
    "queryTaskFrames": "`rayfarm task frames {id}`",
    "recommitTasks": "`rayfarm task retry {id}`",
    "taskJsonFile": "`rayfarm submit`",
    "getOutputUserDirFile": "`rayfarm task outputs {id}`",
}


def fail(message: str, code: Exit = Exit.ERROR) -> NoReturn:
    """Print ``message`` (as it is: no markup) on stderr and exit with ``code``."""
    err.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


def credentials(server: str | None, access_id: str | None, access_key: str | None,
                profile: str | None, ca_cert: str | None = None) -> dict[str, str]:
    """Server, access id and key (and the CA certificate to trust, if any: ``ca_cert``, None when none) from
    flags, a profile or the environment (see the module's order)."""
    chosen: dict[str, str | None] = {"server": server, "access_id": access_id, "access_key": access_key,
                                     "ca_cert": ca_cert}
    if all(chosen.values()):
        return chosen  # type: ignore[return-value]
    env = {key: os.environ.get(name) or None for key, name in ENV.items()}
    try:
        if profile:
            layers = [vars(profiles.find(profile)), env]
        else:
            layers = [env]
            if not all(chosen[k] or env[k] for k in FLAGS):
                found = profiles.find(os.environ.get("RAYFARM_PROFILE") or None)
                if found:
                    layers.append(vars(found))
    except profiles.ProfileError as exc:
        fail(str(exc), Exit.USAGE)
    for layer in layers:
        for key in chosen:
            chosen[key] = chosen[key] or layer.get(key)
    missing = [f"{FLAGS[key]} / {ENV[key]}" for key in FLAGS if not chosen[key]]
    if missing:
        fail(f"Missing {', '.join(missing)}: run `rayfarm login` once (or start a local farm with `rayfarm up`), "
             f"use --profile NAME, or give them as options or environment variables.", Exit.USAGE)
    return chosen  # type: ignore[return-value]


def domain_of(server: str) -> tuple[str, str]:
    """(``host:port``, protocol) of a server URL such as ``http://127.0.0.1:8765`` or ``127.0.0.1:8765``."""
    parsed = urlparse(server if "://" in server else f"http://{server}")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        fail(f"The server {server!r} is not a URL like http://127.0.0.1:8765; fix --server or the profile.", Exit.USAGE)
    return parsed.netloc, parsed.scheme


def connect(server: str | None, access_id: str | None, access_key: str | None, profile: str | None = None,
            ca_cert: str | None = None, **options: Any) -> RayfarmAPI:
    """A client for the farm these credentials point at."""
    found = credentials(server, access_id, access_key, profile, ca_cert)
    domain, protocol = domain_of(found["server"])
    # A command line answers quickly: few retries (the SDK's default waits up to two minutes).
    options = {"retries": 2, "retry_deadline": 10.0, "timeout": 30.0, **options}
    try:
        return RayfarmAPI(found["access_id"], found["access_key"], domain=domain, protocol=protocol,
                          ca_cert=found.get("ca_cert"), **options)
    except RayfarmError as exc:  # the CA certificate cannot be used
        fail(str(exc), Exit.USAGE)


@dataclass(frozen=True)
class Login:
    """The connection options of a command (``--server``, ``--access-id``, ``--access-key``, ``--profile``,
    ``--ca-cert``)."""

    server: str | None = None
    access_id: str | None = None
    access_key: str | None = None
    profile: str | None = None
    ca_cert: str | None = None

    def connect(self, **options: Any) -> RayfarmAPI:
        return connect(self.server, self.access_id, self.access_key, self.profile, self.ca_cert, **options)


_LOGIN_OPTIONS = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
                  for name, annotation in (("server", Server), ("access_id", AccessId), ("access_key", AccessKey),
                                           ("profile", ProfileName), ("ca_cert", CaCert))]


def with_login(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command that talks to the farm: it gets the connection options (declared here, once) and is
    called with them as ``login``, a :class:`Login`."""
    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "login"]

    @functools.wraps(command)
    def wrapper(*args: Any, server: str | None = None, access_id: str | None = None, access_key: str | None = None,
                profile: str | None = None, ca_cert: str | None = None, **kwargs: Any) -> Any:
        return command(*args, login=Login(server, access_id, access_key, profile, ca_cert), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=kept + _LOGIN_OPTIONS)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in kept + _LOGIN_OPTIONS}
    del wrapper.__wrapped__  # typer reads the signature above, not the command's own
    return wrapper


@contextmanager
def calling() -> Iterator[None]:
    """Turn the SDK's errors into a message and the exit code that says what kind of failure it was."""
    try:
        yield
    except RayfarmAPIError as exc:
        fail(f"The farm refused: error {exc.code}: {reword(exc.farm_message, COMMANDS, 'ID')}", Exit.REFUSED)
    except RayfarmConnectionError as exc:
        fail(exc.message, Exit.UNREACHABLE)
    except httpx.HTTPError as exc:
        problem = tls.certificate_problem(exc)
        if problem:
            fail(problem, Exit.UNREACHABLE)
        fail(f"The farm could not be reached ({type(exc).__name__}: {exc}); check that it runs and the URL.",
             Exit.UNREACHABLE)
    except RayfarmError as exc:
        fail(str(exc), Exit.ERROR)
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), Exit.ERROR)


def emit(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()
