"""Farm administration on the server's machine: users and keys (works on the database directly).

The database layers are imported inside the commands: the user commands that only talk to the API
start faster without them.
"""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from rayfarm.cli.session import Exit, fail
from rayfarm.config import Settings
from rayfarm.config import data_dir as resolve_data_dir
from rayfarm.protocol.codes import ApiError

user_app = typer.Typer(help="Create and manage farm users (run on the server's machine).", no_args_is_help=True)
console = Console()

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Farm data folder (default $RAYFARM_DATA_DIR or ~/.rayfarm).")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


SERVER_PARTS = ("starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "cryptography", "PIL", "prometheus_client",
                "itsdangerous")


def need_server_parts() -> None:
    """Exit with a sentence when this machine has rayfarm's node and client install only (no `[server]` extra)."""
    import importlib

    missing = []
    for name in SERVER_PARTS:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        fail(f"This command runs on the farm server's machine, and this install of rayfarm has the node and client "
             f"parts only (missing {', '.join(missing)}): install the server with pip install 'rayfarm[server]'.",
             Exit.USAGE)


def settings(data_dir: Path | None, url: str | None = None, shared_roots: list[Path] | None = None) -> Settings:
    need_server_parts()
    from rayfarm.store.db import database_url

    directory = resolve_data_dir(data_dir)
    roots = []
    for root in shared_roots or []:
        if not root.is_dir():
            fail(f"--shared-root {root} is not a folder on this machine; mount it or fix the path.", Exit.USAGE)
        roots.append(root.resolve())
    return Settings(data_dir=directory, database_url=database_url(directory, url), shared_roots=roots)


def networks(texts: list[str]) -> list[str]:
    """Addresses or CIDR networks, checked and written the standard way (``10.0.0.0/8``, ``::1/128``)."""
    import ipaddress

    found = []
    for text in texts:
        try:
            found.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError:
            fail(f"--trusted-proxy {text!r} is not an IP address or network; write it like 10.0.0.5 or 10.0.0.0/24.",
                 Exit.USAGE)
    return found


def open_farm(data_dir: Path | None, url: str | None = None):
    from rayfarm.server.farm import Farm

    farm = Farm(settings(data_dir, url))
    farm.db.migrate()
    return farm


def farm_token(settings: Settings) -> str:
    """The farm's worker token (made on first use), read from its database."""
    from rayfarm.server.farm import Farm
    from rayfarm.store.workers import worker_token

    farm = Farm(settings)
    try:
        farm.db.migrate()
        with farm.db.write() as conn:
            return worker_token(conn, farm.keys)
    finally:
        farm.db.dispose()


def write_users(data_dir: Path | None, url: str | None, change, farm=None):
    """Run ``change(conn, farm)`` in one write transaction; a refusal is printed and exits 3 (refused)."""
    farm = farm or open_farm(data_dir, url)
    try:
        with farm.db.write() as conn:
            return change(conn, farm)
    except ApiError as exc:
        fail(f"Refused: error {exc.code}: {exc.message}", Exit.REFUSED)


def _credentials(user, key: str) -> dict:
    return {"userId": user.id, "userName": user.name, "accessId": user.access_id, "accessKey": key}


@user_app.command("create")
def create(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: Json = False,
           allow_commands: Annotated[bool, typer.Option("--allow-commands", help="May run generic commands.")] = False,
           admin: Annotated[bool, typer.Option("--admin", help="May manage workers and see the whole farm.")] = False) -> None:
    """Create a user with a new access id and key (the key is shown once)."""
    from rayfarm.store import users as users_store

    user, key = write_users(data_dir, database_url, lambda conn, farm: users_store.create(
        conn, farm.keys, name, allow_commands=allow_commands, is_admin=admin))
    if json_out:
        print(json.dumps(_credentials(user, key)))
    else:
        console.print(f"Created user [bold]{user.name}[/bold] (id {user.id}).")
        console.print(f"access id:  {user.access_id}\naccess key: {key}\nKeep the key secret: it is shown only now.")


@user_app.command("list")
def list_users(data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: Json = False) -> None:
    """List the farm's users."""
    from rayfarm.store import quotas
    from rayfarm.store import users as users_store

    farm = open_farm(data_dir, database_url)
    with farm.db.read() as conn:
        found = users_store.list_all(conn)
        used = quotas.usage_by_user(conn)
    if json_out:
        print(json.dumps([{"userId": u.id, "userName": u.name, "accessId": u.access_id, "disabled": u.disabled,
                           "allowCommands": u.allow_commands, "admin": u.is_admin, "quota": used[u.id].as_json()}
                          for u in found]))
        return
    table = Table("id", "name", "access id", "state", "commands", "admin", "active tasks", "frames/task", "storage")
    for u in found:
        active, frames, storage = _quota_cells(used[u.id])
        table.add_row(str(u.id), u.name, u.access_id, "disabled" if u.disabled else "active",
                      "yes" if u.allow_commands else "no", "yes" if u.is_admin else "no", active, frames, storage)
    console.print(table)


def _limit(value: int | None, shown=str) -> str:
    return "unlimited" if value is None else shown(value)


def _quota_cells(usage) -> tuple[str, str, str]:
    """(active tasks, frames per task, storage) as "in use / limit"."""
    from rayfarm.domain.frames import MAX_FRAMES
    from rayfarm.domain.quotas import show_size

    frames = str(usage.max_frames_per_task) if usage.max_frames_per_task else f"{MAX_FRAMES} (the farm's limit)"
    return (f"{usage.active_tasks} / {_limit(usage.max_active_tasks)}", frames,
            f"{show_size(usage.storage_bytes)} / {_limit(usage.max_storage_bytes, show_size)}")


@user_app.command("quota")
def quota(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: Json = False,
          active_tasks: Annotated[str | None, typer.Option("--active-tasks", help="Tasks waiting or rendering at "
                                                           "once (also caps tasks created but not submitted).")] = None,
          frames_per_task: Annotated[str | None, typer.Option("--frames-per-task", help="Frames in one task.")] = None,
          storage: Annotated[str | None, typer.Option("--storage", help="Uploads and render outputs, e.g. 500G, "
                                                      "2T (binary units).")] = None,
          recount: Annotated[bool, typer.Option("--recount", help="Measure the user's stored bytes on disk again "
                                                "(after files were removed by hand, or an upgrade).")] = False) -> None:
    """Show a user's limits and usage, or change them (0 or none: unlimited)."""
    from rayfarm.domain import quotas as words
    from rayfarm.store import quotas
    from rayfarm.store import users as users_store

    limits: dict[str, int | None] = {}
    try:
        if active_tasks is not None:
            limits["max_active_tasks"] = words.parse_count(active_tasks, "--active-tasks")
        if frames_per_task is not None:
            limits["max_frames_per_task"] = words.parse_frames(frames_per_task)
        if storage is not None:
            limits["max_storage_bytes"] = words.parse_size(storage)
    except ValueError as exc:
        fail(str(exc), Exit.USAGE)

    farm = open_farm(data_dir, database_url)
    measured = None
    if recount:  # measured before the write transaction: it may take a while
        with farm.db.read() as conn:
            user = users_store.by_name(conn, name)
        measured = farm.storage.measure(user.id) if user else None  # an unknown name: set_limits says so

    def change(conn, farm):
        usage = quotas.set_limits(conn, name, **limits)
        return usage if measured is None else quotas.set_stored(conn, name, measured)

    usage = write_users(data_dir, database_url, change, farm)
    if json_out:
        print(json.dumps({"userName": name, **usage.as_json()}))
        return
    active, frames, stored = _quota_cells(usage)
    table = Table("limit", "in use / limit", title=f"Quotas of {name}" + (" (changed)" if limits else ""))
    table.add_row("tasks waiting or rendering", active)
    table.add_row("tasks created, not submitted", f"{usage.unsubmitted_tasks} / {_limit(usage.max_active_tasks)}")
    table.add_row("frames per task", frames)
    table.add_row("storage (uploads and outputs)", stored)
    if usage.reserved_bytes:
        table.add_row("reserved by unfinished uploads", words.show_size(usage.reserved_bytes))
    console.print(table)


def _set_disabled(name: str, data_dir: Path | None, url: str | None, disabled: bool) -> None:
    from rayfarm.store import users as users_store

    write_users(data_dir, url, lambda conn, farm: users_store.set_disabled(conn, name, disabled))
    console.print(f"User {name} is {'disabled' if disabled else 'enabled'}.")


@user_app.command("disable")
def disable(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Refuse every request of a user (takes effect within seconds)."""
    _set_disabled(name, data_dir, database_url, True)


@user_app.command("enable")
def enable(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Accept a disabled user's requests again."""
    _set_disabled(name, data_dir, database_url, False)


@user_app.command("rotate-key")
def rotate_key(name: str, data_dir: DataDir = None, database_url: DatabaseUrl = None, json_out: Json = False) -> None:
    """Give a user a new access key; the old one stops working within seconds."""
    from rayfarm.store import users as users_store

    user, key = write_users(data_dir, database_url, lambda conn, farm: users_store.rotate_key(conn, farm.keys, name))
    if json_out:
        print(json.dumps(_credentials(user, key)))
    else:
        console.print(f"New access key for {name}: {key}")
