"""`rayfarm worker ...`: run a render node (`worker run`), and list / disable / enable / drain nodes over the API.

`rayfarm worker --server URL --token T` (no sub-command) still runs a node, as it always did.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from rayfarm.cli.session import Exit, Json, Login, calling, emit, err, fail, out, with_login

NodeServer = Annotated[str | None, typer.Option("--server", envvar="RAYFARM_SERVER", help="Farm server URL.")]
Token = Annotated[str | None, typer.Option("--token", envvar="RAYFARM_WORKER_TOKEN",
                                           help="Farm worker token (`rayfarm worker-token`). Give it in "
                                                "$RAYFARM_WORKER_TOKEN or --token-file: on the command line "
                                                "every user of this machine sees it (ps).")]
TokenFile = Annotated[Path | None, typer.Option("--token-file", envvar="RAYFARM_WORKER_TOKEN_FILE",
                                                help="A file holding the worker token (owner-only, e.g. chmod 600).")]
CaCert = Annotated[str | None, typer.Option("--ca-cert", envvar="RAYFARM_CA_CERT",
                                            help="Over https: a CA certificate to trust besides the system's "
                                                 "(the studio CA, e.g. from `rayfarm tls self-signed`).")]
MapRoot = Annotated[list[str] | None, typer.Option(
    "--map-root", help="SERVER_PATH=LOCAL_PATH: a --shared-root of the server mounted at another path on this "
                       "node (repeatable); its scenes are then read in place instead of downloaded.")]
NodeName = Annotated[str | None, typer.Option(help="Node name (default: host name).")]
Slots = Annotated[int, typer.Option(help="Chunks rendered at once.", min=1)]
Tags = Annotated[str, typer.Option(help="Comma-separated tags (pools), e.g. gpu,fast.")]
WorkDir = Annotated[Path | None, typer.Option("--work-dir", help="Scene cache and scratch space.")]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]
UnconfinedCommands = Annotated[bool, typer.Option(
    "--unconfined-commands",
    help="Run command tasks unconfined, as this node's user: they can read whatever it can (on the server's "
         "machine the farm's secret key and database too). Without it, command tasks run in a bubblewrap sandbox, "
         "and a node where bubblewrap does not work does not take them.")]
NoPersistentSessions = Annotated[bool, typer.Option(
    "--no-persistent-sessions", "--no-persistent-blender",
    help="Start Blender, and a sandbox for a command, for every chunk. By default a node keeps one session per task "
         "it works on (per slot) and runs chunk after chunk in it: one Blender process, the scene loaded once; one "
         "sandbox for a confined command task's chunks. A task opts out with task.json task_info.persistent_session "
         "\"0\". (--no-persistent-blender: its first name.)")]
SessionIdle = Annotated[float, typer.Option(
    "--session-idle", min=0, help="Seconds a persistent session waits for its task's next chunk before it is "
                                  "closed.")]
SessionMemory = Annotated[str | None, typer.Option(
    "--session-memory", help="Close a persistent Blender session after a chunk when it uses more memory than this, "
                             "e.g. 8G or 500M (default: 75% of the machine's memory divided among the slots).")]
Nodes = Annotated[list[str], typer.Argument(help="Node names or ids (see `rayfarm worker list`).")]
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}

worker_app = typer.Typer(help="Run a render node (`worker run`), or list and manage the farm's nodes.",
                         invoke_without_command=True)


@dataclass
class NodeOptions:
    server: str | None
    token: str | None
    token_file: Path | None
    ca_cert: str | None
    map_root: list[str]
    name: str | None
    slots: int
    tags: str
    work_dir: Path | None
    log_level: str
    unconfined_commands: bool
    no_persistent_sessions: bool = False
    session_idle: float = 60.0
    session_memory: str | None = None


def memory_size(text: str | None) -> int | None:
    """`--session-memory`: bytes from ``8G``, ``500M``, ``1.5T`` or a plain number (binary units)."""
    if text is None:
        return None
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in UNITS else ""
    try:
        size = int(float(value[:len(value) - len(unit)]) * UNITS[unit])
    except ValueError:
        size = 0
    if size <= 0:
        fail(f"--session-memory is a size like 8G or 500M; {text!r} is not.", Exit.USAGE)
    return size


def _run_node(ctx: typer.Context, options: NodeOptions) -> None:
    from rayfarm import tls
    from rayfarm.worker.roots import parse_map
    from rayfarm.worker.tokens import TokenError, read_token_file

    token = options.token
    source = ctx.get_parameter_source("token")
    if token and source is not None and source.name == "COMMANDLINE":
        err.print("Warning: --token shows the worker token to every user of this machine (ps); give it in "
                  "$RAYFARM_WORKER_TOKEN or a file (--token-file FILE, chmod 600) instead.", style="yellow",
                  markup=False, highlight=False, soft_wrap=True)
    if options.token_file:
        try:
            token = read_token_file(options.token_file)
        except TokenError as exc:
            fail(str(exc), Exit.USAGE)
    if not options.server or not token:
        fail("A node needs --server URL and the worker token: $RAYFARM_WORKER_TOKEN or --token-file FILE "
             "(`rayfarm worker-token` prints the token, and the command to run, on the server's machine).", Exit.USAGE)
    try:
        root_map = parse_map(options.map_root)
    except ValueError as exc:
        fail(str(exc), Exit.USAGE)
    memory = memory_size(options.session_memory)
    from rayfarm.worker import WorkerError, run_worker

    logging.basicConfig(level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_worker(options.server, token, name=options.name, slots=options.slots,
                   tags=tuple(t.strip() for t in options.tags.split(",") if t.strip()), work_dir=options.work_dir,
                   unconfined_commands=options.unconfined_commands, ca_cert=options.ca_cert, root_map=root_map,
                   persistent_sessions=not options.no_persistent_sessions, session_idle=options.session_idle,
                   session_memory=memory)
    except tls.TrustError as exc:
        fail(str(exc), Exit.USAGE)
    except WorkerError as exc:
        fail(f"The node stopped: {exc}", Exit.REFUSED)


@worker_app.callback()
def node_compat(ctx: typer.Context,
                server: Annotated[str | None, typer.Option("--server", envvar="RAYFARM_SERVER", hidden=True)] = None,
                token: Annotated[str | None, typer.Option("--token", envvar="RAYFARM_WORKER_TOKEN", hidden=True)] = None,
                token_file: Annotated[Path | None, typer.Option("--token-file", hidden=True)] = None,
                ca_cert: Annotated[str | None, typer.Option("--ca-cert", hidden=True)] = None,
                map_root: Annotated[list[str] | None, typer.Option("--map-root", hidden=True)] = None,
                name: Annotated[str | None, typer.Option(hidden=True)] = None,
                slots: Annotated[int, typer.Option(hidden=True, min=1)] = 1,
                tags: Annotated[str, typer.Option(hidden=True)] = "",
                work_dir: Annotated[Path | None, typer.Option("--work-dir", hidden=True)] = None,
                log_level: Annotated[str, typer.Option(hidden=True)] = "info",
                unconfined_commands: Annotated[bool, typer.Option("--unconfined-commands", hidden=True)] = False,
                no_persistent_sessions: Annotated[bool, typer.Option("--no-persistent-sessions",
                                                                     "--no-persistent-blender", hidden=True)] = False,
                session_idle: Annotated[float, typer.Option("--session-idle", hidden=True, min=0)] = 60.0,
                session_memory: Annotated[str | None, typer.Option("--session-memory", hidden=True)] = None) -> None:
    """Run a render node (`worker run`), or list and manage the farm's nodes."""
    if ctx.invoked_subcommand is not None:
        return
    if not server and not token and not token_file:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    # `rayfarm worker --server ... --token ...`: the first spelling of `worker run`, still supported
    _run_node(ctx, NodeOptions(server, token, token_file, ca_cert, map_root or [], name, slots, tags, work_dir,
                               log_level, unconfined_commands, no_persistent_sessions, session_idle, session_memory))


@worker_app.command("run")
def run(ctx: typer.Context, server: NodeServer = None, token: Token = None, token_file: TokenFile = None,
        ca_cert: CaCert = None, map_root: MapRoot = None, name: NodeName = None, slots: Slots = 1, tags: Tags = "",
        work_dir: WorkDir = None, log_level: LogLevel = "info", unconfined_commands: UnconfinedCommands = False,
        no_persistent_sessions: NoPersistentSessions = False, session_idle: SessionIdle = 60.0,
        session_memory: SessionMemory = None) -> None:
    """Run one render node: pull chunks from the server and render them (confined with bubblewrap)."""
    _run_node(ctx, NodeOptions(server, token, token_file, ca_cert, map_root or [], name, slots, tags, work_dir,
                               log_level, unconfined_commands, no_persistent_sessions, session_idle, session_memory))


@worker_app.command("list")
@with_login
def list_nodes(json_out: Json = False, *, login: Login) -> None:
    """List the farm's render nodes: state, what they render, load, last seen."""
    api = login.connect()
    with calling():
        nodes = api.query.workers()
    if json_out:
        emit(nodes)
        return
    table = Table("id", "name", "state", "running", "load", "machine", "software", "tags", "seen",
                  title=f"{len(nodes)} node(s)")
    now = time.time()
    for node in nodes:
        mode = " (disabled)" if node["disabled"] else " (draining)" if node["draining"] else ""
        running = ", ".join(f"{r['taskId']}:{r['frameIndex']} {r['progress'] or 0:.0f}%" for r in node["running"])
        load = " ".join(part for part in (
            f"cpu {node['cpu']:.0f}%" if node["cpu"] is not None else "",
            f"mem {node['memUsed'] / 2**30:.1f}/{node['memory'] / 2**30:.0f} GiB"
            if node["memUsed"] is not None and node["memory"] else "") if part)
        machine = "; ".join(part for part in (f"{node.get('cores') or '?'} cores, {node['slots']} slot(s)",
                                              node.get("gpu") or "", f"rayfarm {node['version']}"
                                              if node.get("version") else "") if part)
        seen = f"{max(now - node['lastSeen'], 0):.0f} s ago" if node["lastSeen"] else ""
        table.add_row(str(node["id"]), Text(node["name"]), node["state"] + mode, Text(running), load, Text(machine),
                      Text(", ".join(f"{k} {v}".strip() for k, v in node["software"].items())),
                      Text(", ".join(node.get("tags") or [])), seen)
    out.print(table)


def _set_mode(nodes: list[str], mode: str, login: Login) -> None:
    api = login.connect()
    with calling():
        known = api.query.workers()
    by_name = {node["name"]: node["id"] for node in known}
    ids = {node["id"] for node in known}
    chosen, unknown = [], []
    for given in nodes:
        if given in by_name:
            chosen.append(by_name[given])
        elif given.isdigit() and int(given) in ids:
            chosen.append(int(given))
        else:
            unknown.append(given)
    if unknown:
        fail(f"No node named {', '.join(unknown)} on this farm; see `rayfarm worker list`.", Exit.USAGE)
    with calling():
        api.query.set_worker_mode(chosen, mode)
    done = {"enable": "Enabled", "disable": "Disabled", "drain": "Draining"}[mode]
    out.print(Text(f"{done} {', '.join(nodes)}."))


@worker_app.command("disable")
@with_login
def disable(nodes: Nodes, *, login: Login) -> None:
    """Take nodes out now: their running chunks go back to waiting (administrators)."""
    _set_mode(nodes, "disable", login)


@worker_app.command("drain")
@with_login
def drain(nodes: Nodes, *, login: Login) -> None:
    """Let nodes finish what they render, then take no more (administrators)."""
    _set_mode(nodes, "drain", login)


@worker_app.command("enable")
@with_login
def enable(nodes: Nodes, *, login: Login) -> None:
    """Let disabled or draining nodes take chunks again (administrators)."""
    _set_mode(nodes, "enable", login)
