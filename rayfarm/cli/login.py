"""`rayfarm login` (save a checked profile) and `rayfarm profile list`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from rayfarm.cli import profiles
from rayfarm.cli.session import Exit, Json, calling, domain_of, emit, fail, out
from rayfarm.sdk import RayfarmAPI
from rayfarm.sdk.errors import RayfarmError

profile_app = typer.Typer(help="Saved connection profiles (~/.config/rayfarm/config.toml).", no_args_is_help=True)


def _ask(value: str | None, prompt: str, hide: bool = False) -> str:
    if value:
        return value
    if not sys.stdin.isatty():
        fail(f"Give {prompt.lower()} as an option (no terminal to ask on).", Exit.USAGE)
    return typer.prompt(prompt, hide_input=hide)


KEY_HELP = "Your access key (asked for when not given: better than the shell history)."
DEFAULT_HELP = "Make it the default profile (default: when there is none)."


def login(server: Annotated[str | None, typer.Option("--server", help="Farm URL, e.g. http://farm:8765.")] = None,
          access_id: Annotated[str | None, typer.Option("--access-id", help="Your access id.")] = None,
          access_key: Annotated[str | None, typer.Option("--access-key", help=KEY_HELP)] = None,
          profile: Annotated[str | None, typer.Option("--profile", help="Profile name (default: $RAYFARM_PROFILE "
                                                                        "or \"default\").")] = None,
          make_default: Annotated[bool | None, typer.Option("--default/--not-default", help=DEFAULT_HELP)] = None,
          check: Annotated[bool, typer.Option("--check/--no-check", help="Check the credentials with the farm "
                                                                         "before saving.")] = True,
          ca_cert: Annotated[Path | None, typer.Option("--ca-cert", help="Over https: the studio CA certificate to "
                                                       "trust besides the system's (saved in the profile).")] = None) -> None:
    """Save a server and credentials as a profile (owner-only file), after checking them with the farm."""
    name = profile or os.environ.get("RAYFARM_PROFILE") or "default"
    server = _ask(server or os.environ.get("RAYFARM_SERVER"), "Server URL")
    access_id = _ask(access_id or os.environ.get("RAYFARM_ACCESS_ID"), "Access id")
    access_key = _ask(access_key or os.environ.get("RAYFARM_ACCESS_KEY"), "Access key", hide=True)
    domain, protocol = domain_of(server)
    ca = str(ca_cert.expanduser().resolve()) if ca_cert else None
    if ca and not Path(ca).is_file():
        fail(f"--ca-cert {ca_cert}: no such file; give the studio CA's certificate (ca.pem).", Exit.USAGE)
    user = None
    if check:
        try:
            api = RayfarmAPI(access_id, access_key, domain=domain, protocol=protocol, retries=2, retry_deadline=10.0,
                             timeout=30.0, ca_cert=ca)
        except RayfarmError as exc:
            fail(str(exc), Exit.USAGE)
        with calling(), api:
            user = api.login()
    try:
        path = profiles.save(profiles.Profile(name, f"{protocol}://{domain}", access_id, access_key, ca),
                             make_default=make_default)
    except profiles.ProfileError as exc:
        fail(str(exc), Exit.USAGE)
    except OSError as exc:
        fail(f"Cannot write {profiles.config_path()}: {exc.strerror or exc}.", Exit.ERROR)
    who = f" as {user.get('user_name')}" if user else ""
    out.print(Text(f"Saved profile {name!r}{who} for {protocol}://{domain} in {path}."))


@profile_app.command("list")
def list_profiles(json_out: Json = False) -> None:
    """List the saved profiles (never their keys)."""
    try:
        data = profiles.load()
    except profiles.ProfileError as exc:
        fail(str(exc), Exit.USAGE)
    default = profiles.default_name(data)
    rows = [{"name": name, "server": entry.get("server"), "accessId": entry.get("access_id"),
             "caCert": entry.get("ca_cert"), "default": name == default}
            for name, entry in sorted(data.get("profiles", {}).items())]
    if json_out:
        emit(rows)
        return
    table = Table("name", "server", "access id", "CA certificate", "default", title=str(profiles.config_path()))
    for row in rows:
        table.add_row(Text(row["name"]), Text(str(row["server"] or "")), Text(str(row["accessId"] or "")),
                      Text(str(row["caCert"] or "")), "yes" if row["default"] else "")
    out.print(table)
