"""CLI commands that act as a user, over the API: uploads, downloads, logs."""

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from rayfarm.sdk import RayfarmAPI, RayfarmError
from rayfarm.sdk.files import FileOperator

console = Console()
err = Console(stderr=True)

Server = Annotated[str | None, typer.Option("--server", envvar="RAYFARM_SERVER", help="Farm URL, e.g. http://127.0.0.1:8765.")]
AccessId = Annotated[str | None, typer.Option("--access-id", envvar="RAYFARM_ACCESS_ID", help="Your access id.")]
AccessKey = Annotated[str | None, typer.Option("--access-key", envvar="RAYFARM_ACCESS_KEY", help="Your access key.")]


def connect(server: str | None, access_id: str | None, access_key: str | None) -> RayfarmAPI:
    missing = [name for name, value in (("--server / RAYFARM_SERVER", server), ("--access-id / RAYFARM_ACCESS_ID",
               access_id), ("--access-key / RAYFARM_ACCESS_KEY", access_key)) if not value]
    if missing:
        err.print(f"[red]Missing {', '.join(missing)}: give them as options or environment variables "
                  f"(`rayfarm up` prints them and writes credentials.json).[/red]")
        raise typer.Exit(2)
    parsed = urlparse(server if "://" in server else f"http://{server}")
    return RayfarmAPI(access_id, access_key, domain=parsed.netloc, protocol=parsed.scheme or "http")


def fail(exc: Exception) -> None:
    err.print(f"[red]{getattr(exc, 'message', None) or exc}[/red]")
    raise typer.Exit(1)


def upload(files: Annotated[list[Path] | None, typer.Argument(help="Files to upload.")] = None,
           upload_json: Annotated[Path | None, typer.Option("--upload-json", help="A Renderbus upload.json.")] = None,
           as_path: Annotated[str | None, typer.Option("--as", help="The local path task.json uses (one file).")] = None,
           server: Server = None, access_id: AccessId = None, access_key: AccessKey = None) -> None:
    """Upload scenes and assets into your input storage (resumable; unchanged files are not sent again)."""
    if not files and not upload_json:
        err.print("[red]Name files to upload, or --upload-json upload.json.[/red]")
        raise typer.Exit(2)
    operator = FileOperator(connect(server, access_id, access_key).connect)
    try:
        with _bar() as bar:
            for file in files or []:
                job = bar.add_task(file.name, total=file.stat().st_size if file.exists() else 0)
                stored = operator.upload(file, as_path if as_path and len(files) == 1 else None,
                                         lambda done, total, job=job: bar.update(job, completed=done, total=total))
                bar.console.print(f"{file} -> {stored}")
            if upload_json:
                job = bar.add_task(upload_json.name, total=None)
                for stored in operator.upload_json(upload_json, lambda d, t: bar.update(job, completed=d, total=t)):
                    bar.console.print(f"uploaded -> {stored}")
    except (RayfarmError, OSError) as exc:
        fail(exc)


def download(task_id: Annotated[int, typer.Argument(help="The task whose outputs to download.")],
             dest: Annotated[Path | None, typer.Argument(help="Folder to write into (default: ./<task output name>).")] = None,
             server: Server = None, access_id: AccessId = None, access_key: AccessKey = None) -> None:
    """Download every output file of a task, with a progress bar."""
    api = connect(server, access_id, access_key)
    operator = FileOperator(api.connect)
    try:
        info = api.query.task_info([task_id])["items"][0]
        target = dest or Path(os.getcwd()) / (info.get("outputFileName") or str(task_id))
        jobs: dict[str, int] = {}
        with _bar() as bar:
            def progress(name: str, done: int, total: int) -> None:
                if name not in jobs:
                    jobs[name] = bar.add_task(name, total=total)
                bar.update(jobs[name], completed=done, total=total)

            written = operator.download_task(task_id, target, progress)
    except (RayfarmError, OSError) as exc:
        fail(exc)
    console.print(f"{len(written)} file(s) in {target}")


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    console=console)


task_app = typer.Typer(help="Look at and act on your tasks.", no_args_is_help=True)


@task_app.command("log")
def task_log(task_id: int, frame: Annotated[str, typer.Argument(help="Frame index (e.g. 5-8) or frame id.")],
             tail: Annotated[int, typer.Option(help="Lines from the end.")] = 200,
             server: Server = None, access_id: AccessId = None, access_key: AccessKey = None) -> None:
    """Print the render log of one chunk of a task."""
    operator = FileOperator(connect(server, access_id, access_key).connect)
    try:
        try:
            log = operator.frame_log(task_id, frame, tail)
        except RayfarmError:
            if not frame.isdigit():
                raise
            log = operator.frame_log(task_id, int(frame), tail)
    except RayfarmError as exc:
        fail(exc)
    for line in log["lines"]:
        typer.echo(line)  # as logged: no markup, never wrapped at the terminal's width (logs are grepped)
