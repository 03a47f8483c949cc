"""`rayfarm task show`, `task outputs` and `task preview`: one task as a person reads it, its output files, and
its preview movie or contact sheet (made by the farm on demand)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text

from rayfarm.cli.session import Exit, Json, Login, calling, emit, err, fail, out, with_login
from rayfarm.cli.watch import clock, seconds_text, task_item, with_state
from rayfarm.domain.frames import parse_range
from rayfarm.protocol.codes import ApiError

TaskId = Annotated[int, typer.Argument(help="Task id.", min=1)]


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def frames_text(text: str) -> str:
    """A frame range as a person writes it: ``1-24[1]`` -> 1-24, ``1-99[2]`` -> 1-99, every 2nd frame."""
    try:
        runs = parse_range(text)
    except ApiError:
        return text
    parts = []
    for run in runs:
        part = str(run.start) if run.start == run.end else f"{run.start}-{run.end}"
        parts.append(part + (f", every {ordinal(run.step)} frame" if run.step > 1 and run.start != run.end else ""))
    return "; ".join(parts) if any(run.step > 1 for run in runs) else ", ".join(parts)


def pool_text(item: dict) -> str | None:
    """The nodes a task may render on, when the farm says (a ``pool`` name, or ``pools`` tags); None otherwise."""
    if item.get("pool"):
        return str(item["pool"])
    if "pools" in item:
        return ", ".join(map(str, item["pools"])) or "any node"
    return None


def left_text(item: dict) -> str:
    if item.get("etaSeconds") is None:
        return ""
    return f"about {seconds_text(item['etaSeconds'])} ({seconds_text(item['secondsPerFrame'])} a frame so far)"


def outputs_text(task_id: int, listing: dict | None) -> str:
    if not listing or not listing["total"]:
        return "none yet"
    return f"{listing['total']} file(s), {decimal(listing['totalBytes'])} (`rayfarm task outputs {task_id}`)"


@with_login
def show(task_id: TaskId, json_out: Json = False, *, login: Login) -> None:
    """Show one task: state, progress, frame counts, time left, settings, times and outputs."""
    api = login.connect()
    item = with_state(task_item(api, task_id))
    if json_out:
        emit(item)
        return
    with calling():
        listing = api.files.task_outputs(task_id) if item["submitDate"] else None
    per_chunk = item.get("framesPerChunk")
    rows = [("task", f"{item['id']}" + (f" · {item['sceneName']}" if item["sceneName"] else "")),
            ("state", item["state"]),
            ("progress", f"{item['progress']:.0f}% ({item['doneFrames']} of {item['totalFrames']} frames done)"),
            ("frames", f"{item['totalFrames']} in all: {item['doneFrames']} done, {item['executingFrames']} rendering, "
                       f"{item['waitingCount']} waiting, {item['failedFrames']} failed, {item['abortFrames']} stopped"),
            ("time left", left_text(item)),
            ("range", frames_text(item["framesRange"])),
            ("chunks", f"{per_chunk} frame{'s' if per_chunk != 1 else ''} each" if per_chunk else ""),
            ("project", item["projectName"] or "none"), ("labels", ", ".join(item["labels"]) or "none"),
            ("software", item["software"] or ""), ("pool", pool_text(item)),
            ("priority", f"{item['taskUserLevel']} (0-100, higher renders first)"),
            ("node limit", f"{item['taskLimit']} node(s) at once" if item["taskLimit"] else "none"),
            ("chunk time-out", seconds_text(item.get("jobStopTime")) or "none"),
            ("over-time stop", seconds_text(item["overTimeStop"]) if item["overTimeStop"] else "none"),
            ("submitted", clock(item["submitDate"])), ("started", clock(item["startTime"])),
            ("completed", clock(item["completedDate"])), ("render time", seconds_text(item["renderDuration"])),
            ("outputs", outputs_text(task_id, listing))]
    table = Table.grid(padding=(0, 2))
    for name, value in rows:
        if value:  # what the task does not have (no time left, no pool) is left out
            table.add_row(Text(name, style="bold"), Text(value))
    out.print(table)


@with_login
def outputs(task_id: TaskId, json_out: Json = False, *, login: Login) -> None:
    """List a task's output files with their frames and sizes (and whether its previews are made)."""
    with calling():
        listing = login.connect().files.task_outputs(task_id)
    if json_out:
        emit(listing)
        return
    table = Table("file", "frame", "size", "modified", title=f"task {task_id}: {listing['total']} file(s), "
                                                              f"{decimal(listing['totalBytes'])} in {listing['outputFileName']}")
    for entry in listing["items"]:
        table.add_row(Text(entry["name"]), "" if entry["frame"] is None else str(entry["frame"]), decimal(entry["size"]),
                      entry["lastModify"])
    out.print(table)
    movie = listing["previews"]["movie"]
    if movie["frames"]:
        made = "made" if movie["current"] else "made, older than some frames" if movie["ready"] else "not made yet"
        err.print(f"Preview movie ({movie['frames']} frames): {made}; `rayfarm task preview {task_id}` downloads it. "
                  f"Every file: `rayfarm download {task_id}`.", markup=False, highlight=False, soft_wrap=True)


@with_login
def preview(task_id: TaskId,
            out_file: Annotated[Path | None, typer.Option("--out", help="Where to write it (default: "
                                                                         "<task output name>_preview.mp4 here).")] = None,
            sheet: Annotated[bool, typer.Option("--sheet", help="The contact sheet (a JPEG of every frame with its "
                                                                "number) instead of the movie.")] = False,
            *, login: Login) -> None:
    """Download a task's preview movie (H.264 MP4 of its frames), made by the farm now if needed."""
    api = login.connect()
    kind = "sheet" if sheet else "movie"
    with calling():
        if out_file is None:
            name = api.query.task_info([task_id])["items"][0]["outputFileName"] or str(task_id)
            out_file = Path(f"{name}_{'contact-sheet.jpg' if sheet else 'preview.mp4'}")
        if out_file.is_dir():
            fail(f"{out_file} is a folder; give --out a file name (e.g. {out_file / 'preview.mp4'}).", Exit.USAGE)
        with err.status(f"Making and downloading the {'contact sheet' if sheet else 'preview movie'} of task "
                        f"{task_id}..."):
            written = api.files.preview(task_id, out_file, kind)
    out.print(f"{written} ({decimal(written.stat().st_size)})", markup=False, highlight=False)
