"""`rayfarm` command line: the server and a whole local farm, render nodes, users, and a client for your tasks.

Exit codes (see rayfarm.cli.session.Exit): 0 ok, 1 local failure, 2 usage error (arguments, credentials,
profile), 3 the farm refused the call, 4 the farm could not be reached, 5 the task failed, 6 the task
stopped or paused.
"""

import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from rayfarm.cli import admin, backup, blenderaddon, certs, client, doctor, join, login, submit, tasks, workers
from rayfarm.cli.session import Exit, fail
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
app.add_typer(certs.tls_app, name="tls")
app.command()(doctor.doctor)
app.command()(backup.backup)
app.command()(backup.restore)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Farm data folder (default $RAYFARM_DATA_DIR or ~/.rayfarm).")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (default SQLite in the data dir; "
                                                                     "or $RAYFARM_DATABASE_URL).")]
SharedRoot = Annotated[list[Path] | None, typer.Option("--shared-root", help="Studio storage every node mounts (repeatable).")]


TlsCert = Annotated[Path | None, typer.Option("--tls-cert", help="Serve HTTPS with this certificate (PEM; "
                                                            "`rayfarm tls self-signed DIR` makes one).")]
TlsKey = Annotated[Path | None, typer.Option("--tls-key", help="The certificate's private key (PEM, chmod 600).")]
PublicUrl = Annotated[str | None, typer.Option("--url", help="How other machines reach this server, e.g. "
                                                             "https://farm.studio.lan:8765 (shown in the join command).")]


def _endpoint(host: str, port: int, tls_cert: Path | None, tls_key: Path | None, url: str | None,
              ca_cert: Path | None = None) -> join.Endpoint:
    try:
        checked = join.check_tls(tls_cert, tls_key)
    except join.ListenError as exc:
        fail(str(exc), Exit.USAGE)
    cert, key = checked or (None, None)
    if ca_cert is not None and not ca_cert.is_file():
        fail(f"--ca-cert {ca_cert}: no such file; give the CA certificate that signed --tls-cert.", Exit.USAGE)
    ca = ca_cert.resolve() if ca_cert else join.default_ca(cert)
    if key is not None:
        join.say(join.key_warning(key))
    return join.Endpoint(host, port, cert, key, ca, url)


@app.command()
def server(data_dir: DataDir = None, database_url: DatabaseUrl = None,
           host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every address of this machine).")]
           = "127.0.0.1",
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
                                       "X-Forwarded-For and X-Forwarded-Proto are believed, nobody else's.")] = None,
           tls_cert: TlsCert = None, tls_key: TlsKey = None, url: PublicUrl = None) -> None:
    """Run the farm server in the foreground."""
    settings = admin.settings(data_dir, database_url, shared_root)
    from rayfarm.app import serve

    settings.rate_limit, settings.rate_burst = rate_limit, rate_burst
    settings.trusted_proxies = admin.networks(trusted_proxy or [])
    endpoint = _endpoint(host, port, tls_cert, tls_key, url)
    join.say(join.exposure_warning(endpoint))
    # the token in full only on a terminal: a service's output goes to logs that more people read
    join.say(join.join_lines(endpoint.url, admin.farm_token(settings), endpoint.ca_cert, sys.stderr.isatty()))
    serve(settings, host, port, log_level, processes,
          tls=(endpoint.tls_cert, endpoint.tls_key) if endpoint.tls_cert and endpoint.tls_key else None)


@app.command()
def up(data_dir: DataDir = None, database_url: DatabaseUrl = None,
       port: Annotated[int, typer.Option(help="Port of the server.")] = DEFAULT_PORT,
       workers: Annotated[int, typer.Option("--workers", help="Local render nodes to start.")] = 2,
       shared_root: SharedRoot = None,
       profile: Annotated[str, typer.Option("--profile", help="Profile to write the farm's URL and the default "
                                                              "user's keys to (\"\": none).")] = "local",
       host: Annotated[str, typer.Option(help="Address the server listens on: 0.0.0.0 lets nodes and artists on "
                                              "other machines in.")] = "127.0.0.1",
       tls_cert: TlsCert = None, tls_key: TlsKey = None,
       ca_cert: Annotated[Path | None, typer.Option("--ca-cert", help="The CA that signed --tls-cert, for the local "
                                                    "nodes and the profile (default: ca.pem next to it).")] = None,
       url: PublicUrl = None) -> None:
    """Run a whole farm on this machine: server, a default user and N render nodes. Ctrl-C stops it."""
    settings = admin.settings(data_dir, database_url, shared_root)
    from rayfarm.cli.up import run_farm

    raise typer.Exit(run_farm(settings, _endpoint(host, port, tls_cert, tls_key, url, ca_cert), workers, profile))


@app.command("worker-token")
def worker_token(data_dir: DataDir = None, database_url: DatabaseUrl = None, url: PublicUrl = None,
                 ca_cert: Annotated[Path | None, typer.Option("--ca-cert", help="The CA nodes must trust, for the "
                                                              "command shown.")] = None) -> None:
    """Print the farm's worker token (render nodes authenticate with it), and on stderr the command a node runs."""
    token = admin.farm_token(admin.settings(data_dir, database_url))
    print(token)
    shown = url or f"http://{socket.getfqdn()}:{DEFAULT_PORT}"
    join.say(join.join_lines(shown, token, ca_cert.resolve() if ca_cert else None, True))
