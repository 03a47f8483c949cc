"""`rayfarm` command line: server, users, and a whole local farm (`rayfarm up`)."""

import logging
from pathlib import Path
from typing import Annotated

import typer

from rayfarm.cli import admin, client
from rayfarm.config import DEFAULT_PORT

app = typer.Typer(help="rayfarm: a render farm that speaks the Renderbus task API.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(admin.user_app, name="user")
app.add_typer(client.task_app, name="task")
app.command()(client.upload)
app.command()(client.download)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Farm data folder (default $RAYFARM_DATA_DIR or ~/.rayfarm).")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (default SQLite in the data dir; "
                                                                     "or $RAYFARM_DATABASE_URL).")]
SharedRoot = Annotated[list[Path] | None, typer.Option("--shared-root", help="Studio storage every node mounts (repeatable).")]


@app.command()
def server(data_dir: DataDir = None, database_url: DatabaseUrl = None,
           host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
           port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
           shared_root: SharedRoot = None,
           processes: Annotated[int, typer.Option(help="API processes sharing the port (use with PostgreSQL).")] = 1,
           log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info") -> None:
    """Run the farm server in the foreground."""
    from rayfarm.server.run import serve

    serve(admin.settings(data_dir, database_url, shared_root), host, port, log_level, processes)


@app.command()
def up(data_dir: DataDir = None, database_url: DatabaseUrl = None,
       port: Annotated[int, typer.Option(help="Port of the server.")] = DEFAULT_PORT,
       workers: Annotated[int, typer.Option("--workers", help="Local render nodes to start.")] = 2,
       shared_root: SharedRoot = None) -> None:
    """Run a whole farm on this machine: server, a default user and N render nodes. Ctrl-C stops it."""
    from rayfarm.cli.up import run_farm

    raise typer.Exit(run_farm(admin.settings(data_dir, database_url, shared_root), port, workers))


@app.command()
def worker(server: Annotated[str, typer.Option("--server", envvar="RAYFARM_SERVER", help="Farm server URL.")],
           token: Annotated[str, typer.Option("--token", envvar="RAYFARM_WORKER_TOKEN",
                                              help="Farm worker token (`rayfarm worker-token`).")],
           name: Annotated[str | None, typer.Option(help="Node name (default: host name).")] = None,
           slots: Annotated[int, typer.Option(help="Chunks rendered at once.")] = 1,
           tags: Annotated[str, typer.Option(help="Comma-separated tags, e.g. gpu,fast.")] = "",
           work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Scene cache and scratch space.")] = None,
           log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info") -> None:
    """Run one render node: pull chunks from the server and render them."""
    from rayfarm.worker import run_worker

    _configure_logging(log_level)
    run_worker(server, token, name=name, slots=slots, tags=tuple(t for t in tags.split(",") if t),
               work_dir=work_dir)


@app.command("worker-token")
def worker_token(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Print the farm's worker token (render nodes authenticate with it)."""
    from rayfarm.store.workers import worker_token as token_of

    farm = admin.open_farm(data_dir, database_url)
    with farm.db.write() as conn:
        print(token_of(conn, farm.keys))


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


