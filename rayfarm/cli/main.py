"""`rayfarm` command line: the server and a whole local farm, render nodes, users, and a client for your tasks.

Exit codes (see rayfarm.cli.session.Exit): 0 ok, 1 local failure, 2 usage error (arguments, credentials,
profile), 3 the farm refused the call, 4 the farm could not be reached, 5 the task failed, 6 the task
stopped or paused.
"""

from pathlib import Path
from typing import Annotated

import typer

from rayfarm.cli import admin, blenderaddon, client, login, submit, tasks, workers
from rayfarm.config import DEFAULT_PORT

app = typer.Typer(help="rayfarm: a render farm that speaks the Renderbus task API.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.command()(submit.submit)
app.add_typer(tasks.task_app, name="task")
app.add_typer(workers.worker_app, name="worker")
app.add_typer(admin.user_app, name="user")
app.command()(client.upload)
app.command()(client.download)
app.command()(login.login)
app.add_typer(login.profile_app, name="profile")
app.add_typer(blenderaddon.addon_app, name="blender-addon")

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
           log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
           rate_limit: Annotated[float, typer.Option("--rate-limit", min=0, help="Requests per second allowed per "
                                                     "access id, node or address, per process (0 = no limit).")] = 1000.0,
           rate_burst: Annotated[int, typer.Option("--rate-burst", min=1, help="Requests a caller may send at once "
                                                   "before --rate-limit applies.")] = 2000,
           trusted_proxy: Annotated[list[str] | None, typer.Option(
               "--trusted-proxy", help="Address or CIDR of a reverse proxy in front of the farm (repeatable): its "
                                       "X-Forwarded-For and X-Forwarded-Proto are believed, nobody else's.")] = None) -> None:
    """Run the farm server in the foreground."""
    from rayfarm.app import serve

    settings = admin.settings(data_dir, database_url, shared_root)
    settings.rate_limit, settings.rate_burst = rate_limit, rate_burst
    settings.trusted_proxies = admin.networks(trusted_proxy or [])
    serve(settings, host, port, log_level, processes)


@app.command()
def up(data_dir: DataDir = None, database_url: DatabaseUrl = None,
       port: Annotated[int, typer.Option(help="Port of the server.")] = DEFAULT_PORT,
       workers: Annotated[int, typer.Option("--workers", help="Local render nodes to start.")] = 2,
       shared_root: SharedRoot = None,
       profile: Annotated[str, typer.Option("--profile", help="Profile to write the farm's URL and the default "
                                                              "user's keys to (\"\": none).")] = "local") -> None:
    """Run a whole farm on this machine: server, a default user and N render nodes. Ctrl-C stops it."""
    from rayfarm.cli.up import run_farm

    raise typer.Exit(run_farm(admin.settings(data_dir, database_url, shared_root), port, workers, profile))


@app.command("worker-token")
def worker_token(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Print the farm's worker token (render nodes authenticate with it)."""
    from rayfarm.store.workers import worker_token as token_of

    farm = admin.open_farm(data_dir, database_url)
    with farm.db.write() as conn:
        print(token_of(conn, farm.keys))
