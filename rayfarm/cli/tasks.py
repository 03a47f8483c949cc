"""`rayfarm task ...`: look at tasks and frames, follow them, and act on them over the API."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from rayfarm.cli import review
from rayfarm.cli.session import Exit, Json, Login, calling, emit, fail, out, with_login
from rayfarm.cli.watch import (
    FRAME_GROUPS,
    FRAME_STATES,
    TASK_GROUPS,
    TASK_STATES,
    clock,
    follow,
    report,
    seconds_text,
    state_name,
    with_state,
)
from rayfarm.domain.frames import parse_range
from rayfarm.protocol.codes import ApiError
from rayfarm.sdk import RayfarmAPI
from rayfarm.sdk.files import FileOperator

task_app = typer.Typer(help="Look at, follow and act on your tasks.", no_args_is_help=True)

TaskId = Annotated[int, typer.Argument(help="Task id.", min=1)]
TaskIds = Annotated[list[int], typer.Argument(help="One or more task ids.", min=1)]
FAILED = [5, 11]  # failed, timed out
RERENDERABLE = [3, 4, 5, 11]  # stopped, done, failed, timed out
FRAMES_PAGE = 1000


def parse_states(values: list[str] | None, names: dict[int, str], groups: dict[str, list[int]] | None = None) -> list[int]:
    """State names or codes (repeatable, comma-separated) -> codes; a usage error names the valid ones. A name in
    ``groups`` stands for all of its codes (``failed`` frames: failed and timed out, as the counts have it)."""
    by_name = {name: [code] for code, name in names.items()} | (groups or {})
    codes: list[int] = []
    for part in (p.strip().lower() for value in values or [] for p in value.split(",")):
        if not part:
            continue
        found = [int(part)] if part.isdigit() else by_name.get(part)
        if not found or found[0] not in names:
            fail(f"Unknown state {part!r}; use one of: {', '.join(by_name)} (or their codes).", Exit.USAGE)
        codes.extend(code for code in found if code not in codes)
    return codes


def all_frames(api: RayfarmAPI, task_id: int, statuses: list[int] | None = None) -> list[dict]:
    """Every chunk of a task (only those in ``statuses``, filtered by the farm, when given), page after page."""
    items: list[dict] = []
    with calling():
        while True:
            page = api.query.task_frames(task_id, page_num=len(items) // FRAMES_PAGE + 1, page_size=FRAMES_PAGE,
                                         status=statuses or None)
            items += page["items"]
            if len(page["items"]) < FRAMES_PAGE or len(items) >= page["total"]:
                return items


def tries(frame: dict) -> str:
    """How many times a chunk ran (``attempts`` counts the failed runs): a done or rendering chunk's failures plus
    the run that did it; '' for a chunk that never ran."""
    failed = frame["attempts"]
    return str(failed + 1 if frame["frameStatus"] in (2, 4) else failed or "")


def chunks_holding(task_id: int, wanted_text: list[str], chunks: list[dict]) -> list[int]:
    """The ids of the chunks that hold any of the frames given (numbers and ranges: 5, 5-8, 1-9[2], 1,3,10-20);
    a usage error naming the frames no chunk holds."""
    wanted: set[int] = set()
    for text in wanted_text:
        try:
            wanted.update(frame for run in parse_range(text) for frame in run.frames())
        except ApiError as exc:
            fail(f"--frame {text}: {exc.message}", Exit.USAGE)
    found, covered = [], set()
    for chunk in chunks:
        held = wanted.intersection(frame for run in parse_range(chunk["frameIndex"]) for frame in run.frames())
        if held:
            found.append(chunk["id"])
            covered |= held
    if missing := sorted(wanted - covered):
        shown = ", ".join(map(str, missing[:10])) + (" and more" if len(missing) > 10 else "")
        fail(f"Task {task_id} has no frame {shown}; its chunks are listed by `rayfarm task frames {task_id}`.",
             Exit.USAGE)
    return found


def duration(text: str) -> int:
    """'1800', '90s', '30m', '2h', '1h30m', '0' or 'off' -> seconds."""
    text = text.strip().lower()
    if text in ("off", "none"):
        return 0
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or not match:
        fail(f"{text!r} is not a duration; write seconds (1800) or like 30m, 2h, 1h30m (0 or off: no limit).",
             Exit.USAGE)
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds


# ------------------------------------------------------------------ looking


@task_app.command("list")
@with_login
def list_tasks(state: Annotated[list[str] | None, typer.Option("--state", help="Only these states (names or codes; "
                                                                                "repeat or comma-separate).")] = None,
               search: Annotated[str | None, typer.Option("--search", help="Scene name or task id.")] = None,
               page: Annotated[int, typer.Option("--page", min=1, help="Page, from 1 (newest tasks first).")] = 1,
               page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000, help="Tasks per page.")] = 50,
               deleted: Annotated[bool, typer.Option("--deleted", help="List deleted tasks instead.")] = False,
               json_out: Json = False, *, login: Login) -> None:
    """List your tasks, newest first."""
    codes = parse_states(state, TASK_STATES, TASK_GROUPS)
    api = login.connect()
    with calling():
        answer = api.query.get_task_list(page_num=page, page_size=page_size, status_list=codes or None,
                                         search_keyword=search, recycle_flag=1 if deleted else None)
    items = [with_state(item) for item in answer["items"]]
    if json_out:
        emit({"pageNum": answer["pageNum"], "pageCount": answer["pageCount"], "total": answer["total"], "items": items})
        return
    left = any(item.get("etaSeconds") is not None for item in items)  # a column only when a task has an estimate
    table = Table("id", "scene", "state", "progress", *(["left"] if left else []), "frames", "failed", "level",
                  "submitted", "project",
                  title=f"{answer['total']} task(s), page {answer['pageNum']} of {max(answer['pageCount'], 1)}")
    for item in items:
        table.add_row(str(item["id"]), Text(item["sceneName"]), item["state"], f"{item['progress']:.0f}%",
                      *([seconds_text(item.get("etaSeconds"))] if left else []),
                      f"{item['doneFrames']}/{item['totalFrames']}", str(item["failedFrames"] or ""),
                      str(item["taskUserLevel"]), clock(item["submitDate"]), Text(item["projectName"]))
    out.print(table)


task_app.command("show")(review.show)
task_app.command("outputs")(review.outputs)
task_app.command("preview")(review.preview)


@task_app.command("frames")
@with_login
def frames(task_id: TaskId,
           state: Annotated[list[str] | None, typer.Option("--state", help="Only chunks in these states (names or "
                                                                            "codes; repeat or comma-separate).")] = None,
           json_out: Json = False, *, login: Login) -> None:
    """List a task's chunks (one row per `frames per chunk` frames) with their state, node and times."""
    codes = sorted(parse_states(state, FRAME_STATES, FRAME_GROUPS))
    items = [{**f, "state": state_name(f["frameStatus"], FRAME_STATES)}
             for f in all_frames(login.connect(), task_id, codes)]
    if json_out:
        emit({"taskId": task_id, "total": len(items), "items": items})
        return
    table = Table("id", "frames", "state", "node", "tries", "started", "ended", "seconds", "progress", "error",
                  title=f"task {task_id}: {len(items)} chunk(s)")
    for f in items:
        table.add_row(str(f["id"]), f["frameIndex"], f["state"], Text(f["nodeName"] or ""), tries(f),
                      clock(f["startTime"], date=False), clock(f["endTime"], date=False),
                      str(f["frameExecuteTime"] or ""), f"{f['progress']:.0f}%", Text((f["errorMessage"] or "")[:80]))
    out.print(table)


@task_app.command("watch")
@with_login
def watch(task_id: TaskId,
          interval: Annotated[float, typer.Option(help="Seconds between looks.", min=0.1)] = 1.0,
          json_out: Json = False, *, login: Login) -> None:
    """Follow a task with a live progress bar until it ends.

    Exit code: 0 done, 5 failed / done with failed frames / abandoned, 6 stopped or paused.
    """
    api = login.connect(retries=3, retry_deadline=120.0)
    try:
        item, outcome = follow(api, task_id, interval)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if json_out:
        emit(with_state(item))
    report(item, outcome)
    raise typer.Exit(int(outcome))


@task_app.command("log")
@with_login
def task_log(task_id: TaskId, frame: Annotated[str, typer.Argument(help="Frame index (e.g. 5-8) or frame id.")],
             tail: Annotated[int, typer.Option(help="Lines from the end.", min=1)] = 200, *, login: Login) -> None:
    """Print the render log of one chunk of a task."""
    from rayfarm.sdk.errors import RayfarmAPIError

    operator = FileOperator(login.connect().connect)
    with calling():
        try:
            log = operator.frame_log(task_id, frame, tail)
        except RayfarmAPIError:
            if not frame.isdigit():
                raise
            log = operator.frame_log(task_id, int(frame), tail)
    for line in log["lines"]:
        typer.echo(line)  # as logged: no markup, never wrapped at the terminal's width (logs are grepped)


@task_app.command("history")
@with_login
def history(task_id: TaskId, json_out: Json = False, *, login: Login) -> None:
    """Who did what to a task, newest first: every call that changed it (or was refused), from the SDK, the
    command line or the dashboard, with the client address and the outcome."""
    api = login.connect()
    with calling():
        items = list(api.user.iter_task_records(task_ids=[task_id]))
    if json_out:
        emit({"taskId": task_id, "total": len(items), "items": items})
        return
    table = Table("when", "call", "by", "channel", "address", "outcome", "details",
                  title=f"task {task_id}: {len(items)} record(s)")
    for item in items:
        outcome = "accepted" if item["code"] == 200 else f"refused ({item['code']}): {item['message']}"
        table.add_row(item["createTime"], item["buttonName"], Text(f"{item['userName']} ({item['accessId']})"),
                      item["channel"], Text(item["ip"]), Text(outcome[:120]), Text(item["detail"][:80]))
    out.print(table)


# ------------------------------------------------------------------ acting


def _each(task_ids: list[int], login: Login, call: str, done: str) -> None:
    api = login.connect()
    with calling():
        getattr(api.task, call)(list(task_ids))
    out.print(f"{done} {'task' if len(task_ids) == 1 else 'tasks'} {', '.join(map(str, task_ids))}.", highlight=False)


@task_app.command("stop")
@with_login
def stop(task_ids: TaskIds, *, login: Login) -> None:
    """Stop tasks: running renders are killed at once; `task start` resumes them."""
    _each(task_ids, login, "stop_task", "Stopped")


@task_app.command("start")
@with_login
def start(task_ids: TaskIds, *, login: Login) -> None:
    """Resume stopped tasks."""
    _each(task_ids, login, "start_task", "Started")


@task_app.command("abort")
@with_login
def abort(task_ids: TaskIds, *, login: Login) -> None:
    """Abandon tasks for good (they cannot be started again)."""
    _each(task_ids, login, "abort_task", "Abandoned")


@task_app.command("delete")
@with_login
def delete(task_ids: TaskIds, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
           *, login: Login) -> None:
    """Delete stopped or finished tasks (they move to the recycle bin: `task list --deleted`)."""
    if not yes:
        if not sys.stdin.isatty():
            fail("Deleting needs confirmation: add --yes.", Exit.USAGE)
        typer.confirm(f"Delete task(s) {', '.join(map(str, task_ids))}?", abort=True)
    _each(task_ids, login, "delete_task", "Deleted")


@task_app.command("full-speed")
@with_login
def full_speed(task_ids: TaskIds, *, login: Login) -> None:
    """Render the rest of tasks paused after their priority frames (or release held frames now)."""
    _each(task_ids, login, "full_speed", "Full speed for")


@task_app.command("priority")
@with_login
def priority(task_id: TaskId, level: Annotated[int, typer.Argument(help="0-100; higher renders first.", min=0, max=100)],
             *, login: Login) -> None:
    """Change a task's priority level."""
    api = login.connect()
    with calling():
        api.task.update_priority(task_id, level)
    out.print(f"Task {task_id} has priority {level}.", highlight=False)


@task_app.command("limit")
@with_login
def limit(task_id: TaskId, nodes: Annotated[int, typer.Argument(help="Most nodes at once (0: no limit).", min=0)],
          *, login: Login) -> None:
    """Limit how many nodes render a task at once."""
    api = login.connect()
    with calling():
        api.task.update_task_limit(task_id, nodes)
    out.print(f"Task {task_id} renders on {f'at most {nodes} node(s)' if nodes else 'any number of nodes'} at once.",
              highlight=False)


@task_app.command("overtime")
@with_login
def overtime(task_id: TaskId, limit: Annotated[str, typer.Argument(help="Like 1800, 30m, 2h; 0 or off: no limit.")],
             *, login: Login) -> None:
    """Stop a task when one of its frames renders longer than this."""
    seconds = duration(limit)
    api = login.connect()
    with calling():
        api.task.set_task_overtime_top([task_id], seconds)
    out.print(f"Task {task_id}: {f'stops when a frame renders longer than {seconds} s' if seconds else 'no over-time stop'}.",
              highlight=False)


@task_app.command("retry")
@with_login
def retry(task_id: TaskId,
          everything: Annotated[bool, typer.Option("--all", help="Re-render every finished or stopped chunk, "
                                                                 "not only the failed ones.")] = False,
          frame: Annotated[list[str] | None, typer.Option("--frame", help="Only the chunks holding these frames: a "
                                                                          "number or a range (5, 5-8, 1,3,10-20; "
                                                                          "repeatable).")] = None, *, login: Login) -> None:
    """Render failed frames again (or the chunks holding chosen frames, or the whole task)."""
    api = login.connect()
    statuses = RERENDERABLE if everything or frame else FAILED
    frame_ids = chunks_holding(task_id, frame, all_frames(api, task_id)) if frame else None
    with calling():
        count = api.task.recommit_task_frames(task_id, frame_ids, select_all=not frame, status=statuses)["count"]
    if count:
        out.print(f"{count} chunk(s) of task {task_id} will render again.", highlight=False)
    else:
        what = "failed " if statuses == FAILED else ""
        out.print(f"Task {task_id} has no {what}chunks to render again.", highlight=False)
