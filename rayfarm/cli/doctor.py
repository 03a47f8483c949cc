"""`rayfarm doctor`: check this machine as a farm server or a render node, and say what to fix.

As a node (``--role node``, the default when ``--server`` is given): the server is reached (its certificate
trusted over https), the clocks agree within the signing window, the worker token is accepted, Blender runs,
bubblewrap confines, the cache has room. As a server: the data dir and secret are owner-only, the database
answers with the current schema, storage has room, the TLS certificate serves and is not expiring; and with
``--server`` it is reached like a node reaches it. Exit code 1 when something is wrong (a FAIL line).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from rayfarm.cli import doctor_checks as checks
from rayfarm.cli.session import Exit, emit, fail, out

STYLE = {checks.OK: "green", checks.WARN: "yellow", checks.FAIL: "bold red"}


def doctor(server: Annotated[str | None, typer.Option("--server", envvar="RAYFARM_SERVER",
                                                      help="The farm's URL, e.g. https://farm.studio.lan:8765.")] = None,
           role: Annotated[str | None, typer.Option("--role", help="server or node (default: node with --server, "
                                                                   "else server).")] = None,
           ca_cert: Annotated[str | None, typer.Option("--ca-cert", envvar="RAYFARM_CA_CERT",
                                                       help="A CA certificate to trust besides the system's.")] = None,
           token_file: Annotated[Path | None, typer.Option("--token-file", envvar="RAYFARM_WORKER_TOKEN_FILE",
                                                           help="The node's worker token file (or "
                                                                "$RAYFARM_WORKER_TOKEN).")] = None,
           work_dir: Annotated[Path | None, typer.Option("--work-dir", help="The node's work dir (default "
                                                         "~/.rayfarm/worker).")] = None,
           data_dir: Annotated[Path | None, typer.Option("--data-dir", help="The server's data dir (default "
                                                         "$RAYFARM_DATA_DIR or ~/.rayfarm).")] = None,
           database_url: Annotated[str | None, typer.Option("--database-url", help="The server's database (default "
                                                            "$RAYFARM_DATABASE_URL or SQLite in the data dir).")] = None,
           tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="The server's certificate.")] = None,
           tls_key: Annotated[Path | None, typer.Option("--tls-key", help="The server's key.")] = None,
           json_out: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False) -> None:
    """Check this machine as a farm server or a render node; say what to fix (exit code 1 when something is wrong)."""
    role = role or ("node" if server else "server")
    if role not in ("server", "node"):
        fail("--role is server or node.", Exit.USAGE)
    if role == "node" and not server:
        fail("A node is checked against its server: give --server URL (or $RAYFARM_SERVER).", Exit.USAGE)
    found: list[checks.Finding] = []
    client = None
    if server:
        reached, client = checks.reach(server, ca_cert)
        found += reached
    if role == "node":
        if client is not None:
            found.append(checks.token(client, _token(token_file)))
        from rayfarm.worker.agent import default_work_dir

        found += checks.node((work_dir or default_work_dir()).expanduser().absolute())
    else:
        from rayfarm.cli import admin

        settings = admin.settings(data_dir, database_url)
        found += checks.server(settings.data_dir, settings.database_url)
        if tls_cert or tls_key:
            found += checks.certificate(tls_cert, tls_key)
    if client is not None:
        client.close()
    problems = [f for f in found if f.level == checks.FAIL]
    if json_out:
        emit({"role": role, "ok": not problems, "findings": [vars(f) for f in found]})
    else:
        for finding in found:
            line = Text(f"{finding.level:<5} ", style=STYLE[finding.level])
            line.append(f"{finding.topic:<9} {finding.text}")
            out.print(line, soft_wrap=True)
        out.print(Text(f"{len(problems)} problem(s): fix the FAIL lines and run rayfarm doctor again." if problems
                       else f"This machine looks ready as a farm {role}.", style="bold"), soft_wrap=True)
    raise typer.Exit(1 if problems else 0)


def _token(token_file: Path | None) -> str | None:
    if token_file:
        from rayfarm.worker.tokens import TokenError, read_token_file

        try:
            return read_token_file(token_file)
        except TokenError as exc:
            fail(str(exc), Exit.USAGE)
    return os.environ.get("RAYFARM_WORKER_TOKEN") or None
