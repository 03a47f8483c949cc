"""`rayfarm upload` and `rayfarm download`: files in and out of your farm storage, with progress bars."""

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from rayfarm.cli.session import Exit, Login, calling, fail, out, with_login
from rayfarm.sdk.files import FileOperator


@with_login
def upload(files: Annotated[list[Path] | None, typer.Argument(help="Files to upload.")] = None,
           upload_json: Annotated[Path | None, typer.Option("--upload-json", help="A Renderbus upload.json.")] = None,
           as_path: Annotated[str | None, typer.Option("--as", help="The local path task.json uses (one file).")] = None,
                                                       *, login: Login) -> None:
    """Upload scenes and assets into your input storage (resumable; unchanged files are not sent again)."""
    if not files and not upload_json:
        fail("Name files to upload, or --upload-json upload.json.", Exit.USAGE)
    operator = FileOperator(login.connect().connect)
    with calling(), _bar() as bar:
        for file in files or []:
            job = bar.add_task(file.name, total=file.stat().st_size if file.exists() else 0)
            stored = operator.upload(file, as_path if as_path and len(files) == 1 else None,
                                     lambda done, total, job=job: bar.update(job, completed=done, total=total))
            bar.console.print(f"{file} -> {stored}", markup=False, highlight=False)
        if upload_json:
            job = bar.add_task(upload_json.name, total=None)
            for stored in operator.upload_json(upload_json, lambda d, t: bar.update(job, completed=d, total=t)):
                bar.console.print(f"uploaded -> {stored}", markup=False, highlight=False)


@with_login
def download(task_id: Annotated[int, typer.Argument(help="The task whose outputs to download.", min=1)],
             dest: Annotated[Path | None, typer.Argument(help="Folder to write into (default: ./<task output name>).")] = None,
                                                         *, login: Login) -> None:
    """Download every output file of a task, with a progress bar."""
    api = login.connect()
    with calling():
        info = api.query.task_info([task_id])["items"][0]
        target = dest or Path(os.getcwd()) / (info.get("outputFileName") or str(task_id))
        jobs: dict[str, int] = {}
        with _bar() as bar:
            def progress(name: str, done: int, total: int) -> None:
                if name not in jobs:
                    jobs[name] = bar.add_task(name, total=total)
                bar.update(jobs[name], completed=done, total=total)

            written = api.files.download_task(task_id, target, progress)
    out.print(f"{len(written)} file(s) in {target}", markup=False, highlight=False)


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    console=out)
