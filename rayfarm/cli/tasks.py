"""`rayfarm task ...`: look at tasks and frames, follow them, and act on them over the API."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from rayfarm.cli.session import Exit, Json, Login, calling, emit, fail, out, with_login
from rayfarm.cli.watch import FRAME_STATES, TASK_STATES, clock, follow, report, state_name, task_item, with_state
from rayfarm.sdk import RayfarmAPI
from rayfarm.sdk.files import FileOperator

task_app = typer.Typer(help="Look at, follow and act on your tasks.", no_args_is_help=True)

TaskId = Annotated[int, typer.Argument(help="Task id.", min=1)]
TaskIds = Annotated[list[int], typer.Argument(help="One or more task ids.", min=1)]
FAILED = [5, 11]  # failed, timed out
RERENDERABLE = [3, 4, 5, 11]  # stopped, done, failed, timed out
FRAMES_PAGE = 1000


def parse_states(values: list[str] | None, names: dict[int, str]) -> list[int]:
    """State names or codes (repeatable, comma-separated) -> codes; a usage error names the valid ones."""
    by_name = {name: code for code, name in names.items()}
    codes: list[int] = []
    for part in (p.strip().lower() for value in values or [] for p in value.split(",")):
        if not part:
            continue
        code = int(part) if part.isdigit() else by_name.get(part)
        if code not in names:
            fail(f"Unknown state {part!r}; use one of: {', '.join(by_name)} (or their codes).", Exit.USAGE)
        codes.append(code)
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
    codes = parse_states(state, TASK_STATES)
    api = login.connect()
    with calling():
        answer = api.query.get_task_list(page_num=page, page_size=page_size, status_list=codes or None,
                                         search_keyword=search, recycle_flag=1 if deleted else None)
    items = [with_state(item) for item in answer["items"]]
    if json_out:
        emit({"pageNum": answer["pageNum"], "pageCount": answer["pageCount"], "total": answer["total"], "items": items})
        return
    table = Table("id", "scene", "state", "progress", "frames", "failed", "level", "submitted", "project",
                  title=f"{answer['total']} task(s), page {answer['pageNum']} of {max(answer['pageCount'], 1)}")
    for item in items:
        table.add_row(str(item["id"]), Text(item["sceneName"]), item["state"], f"{item['progress']:.0f}%",
                      f"{item['doneFrames']}/{item['totalFrames']}", str(item["failedFrames"] or ""),
                      str(item["taskUserLevel"]), clock(item["submitDate"]), Text(item["projectName"]))
    out.print(table)


@task_app.command("show")
@with_login
def show(task_id: TaskId, json_out: Json = False, *, login: Login) -> None:
    """Show one task: state, progress, frame counts, settings and times."""
    item = with_state(task_item(login.connect(), task_id))
    if json_out:
        emit(item)
        return
    table = Table.grid(padding=(0, 2))
    rows = [("task", f"{item['id']} ({item['taskAlias']})"), ("scene", item["sceneName"]),
            ("state", f"{item['state']} ({item['taskStatus']})"), ("progress", f"{item['progress']:.1f}%"),
            ("frames", f"{item['totalFrames']} in all: {item['doneFrames']} done, {item['executingFrames']} rendering, "
                       f"{item['waitingCount']} waiting, {item['failedFrames']} failed, {item['abortFrames']} stopped"),
            ("range", item["framesRange"]), ("project", item["projectName"]), ("software", item["software"] or ""),
            ("priority", str(item["taskUserLevel"])), ("node limit", str(item["taskLimit"] or "none")),
            ("over-time stop", f"{item['overTimeStop']} s" if item["overTimeStop"] else "none"),
            ("labels", ", ".join(item["labels"])), ("submitted", clock(item["submitDate"])),
            ("started", clock(item["startTime"])), ("completed", clock(item["completedDate"])),
            ("render time", f"{item['renderDuration']:.1f} s"), ("outputs", item["outputFileName"] or "")]
    for name, value in rows:
        table.add_row(Text(name, style="bold"), Text(value))
    out.print(table)


@task_app.command("frames")
@with_login
def frames(task_id: TaskId,
           state: Annotated[list[str] | None, typer.Option("--state", help="Only chunks in these states (names or "
                                                                            "codes; repeat or comma-separate).")] = None,
           json_out: Json = False, *, login: Login) -> None:
    """List a task's chunks (one row per `frames per chunk` frames) with their state, node and times."""
    codes = sorted(set(parse_states(state, FRAME_STATES)))
    items = [{**f, "state": state_name(f["frameStatus"], FRAME_STATES)}
             for f in all_frames(login.connect(), task_id, codes)]
    if json_out:
        emit({"taskId": task_id, "total": len(items), "items": items})
        return
    table = Table("id", "frames", "state", "node", "attempts", "started", "ended", "seconds", "progress", "error",
                  title=f"task {task_id}: {len(items)} chunk(s)")
    for f in items:
        table.add_row(str(f["id"]), f["frameIndex"], f["state"], Text(f["nodeName"] or ""), str(f["attempts"]),
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
          frame: Annotated[list[str] | None, typer.Option("--frame", help="Only this chunk (frame index like 5-8; "
                                                                          "repeatable).")] = None, *, login: Login) -> None:
    """Render failed frames again (or chosen chunks, or the whole task)."""
    api = login.connect()
    statuses = RERENDERABLE if everything or frame else FAILED
    frame_ids = None
    if frame:
        by_index = {f["frameIndex"]: f["id"] for f in all_frames(api, task_id)}
        unknown = [index for index in frame if index not in by_index]
        if unknown:
            fail(f"Task {task_id} has no chunk {', '.join(unknown)}; see `rayfarm task frames {task_id}`.", Exit.USAGE)
        frame_ids = [by_index[index] for index in frame]
    with calling():
        count = api.task.recommit_task_frames(task_id, frame_ids, select_all=not frame, status=statuses)["count"]
    if count:
        out.print(f"{count} chunk(s) of task {task_id} will render again.", highlight=False)
    else:
        what = "failed " if statuses == FAILED else ""
        out.print(f"Task {task_id} has no {what}chunks to render again.", highlight=False)
