"""State names, and a live progress bar that follows a task until it ends (exit code = its outcome)."""

from __future__ import annotations

import time
from datetime import datetime

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from rayfarm.cli.session import Exit, calling, err
from rayfarm.sdk import RayfarmAPI

TASK_STATES = {0: "waiting", 5: "rendering", 8: "preprocessing", 10: "stopped", 20: "arrears-stopped",
               23: "overtime-stopped", 25: "done", 30: "done-with-failures", 35: "abandoned", 40: "paused",
               45: "failed"}
FRAME_STATES = {1: "waiting", 2: "rendering", 3: "stopped", 4: "done", 5: "failed", 6: "preprocessing",
                8: "held", 11: "timed-out"}
# A state name a user filters by means what the counts with that name count (`task show`, the dashboard, the
# farm's totals): failed frames are failed or timed out, waiting ones wait, are held behind the priority frames
# or wait for pre-processing; waiting tasks wait or are pre-processed, stopped ones were stopped by hand, for
# arrears or by their over-time limit. The other names (timed-out, held...) choose their one state.
FRAME_GROUPS = {"waiting": [1, 6, 8], "failed": [5, 11]}
TASK_GROUPS = {"waiting": [0, 8], "stopped": [10, 20, 23]}
# Where watching ends, and what the exit code says about it.
OUTCOMES = {25: Exit.OK, 30: Exit.TASK_FAILED, 35: Exit.TASK_FAILED, 45: Exit.TASK_FAILED,
            10: Exit.TASK_STOPPED, 20: Exit.TASK_STOPPED, 23: Exit.TASK_STOPPED, 40: Exit.TASK_STOPPED}
ADVICE = {30: "some frames failed: see `rayfarm task frames {id} --state failed`, re-render them with "
              "`rayfarm task retry {id}`",
          45: "every frame failed: read a log with `rayfarm task log {id} FRAME`, then `rayfarm task retry {id}`",
          35: "it was abandoned",
          10: "it was stopped: `rayfarm task start {id}` resumes it",
          20: "it was stopped: `rayfarm task start {id}` resumes it",
          23: "it ran past its over-time limit and was stopped: `rayfarm task start {id}` resumes it",
          40: "its priority frames are done and it waits: `rayfarm task full-speed {id}` renders the rest"}


def state_name(code: int, names: dict[int, str] = TASK_STATES) -> str:
    return names.get(code, f"status-{code}")


def with_state(item: dict) -> dict:
    """An API task item with its state name added (``state``)."""
    return {**item, "state": state_name(item["taskStatus"])}


def clock(ms: int | None, date: bool = True) -> str:
    """Local time of an epoch-milliseconds value, as the dashboard shows it: 2025-03-04 17:05:09 ('' for none)."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def seconds_text(seconds: float | None) -> str:
    """A length of time as a person says it: 45 s, 3 min 20 s, 2 h 5 min, 3 days ('' for none)."""
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")
    if s < 86400 or s % 86400:
        return f"{s // 3600} h" + (f" {s % 3600 // 60} min" if s % 3600 // 60 else "")
    return f"{s // 86400} day{'s' if s >= 172800 else ''}"


def task_item(api: RayfarmAPI, task_id: int) -> dict:
    with calling():
        return api.query.task_info([task_id])["items"][0]


def follow(api: RayfarmAPI, task_id: int, interval: float = 1.0) -> tuple[dict, Exit]:
    """Poll the task with a progress bar on stderr until it finishes, stops or pauses; (last item, exit code)."""
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[state]:<18} {task.fields[frames]}"), TimeElapsedColumn())
    item = task_item(api, task_id)  # an unknown task fails before the bar appears
    with Progress(*columns, console=err) as bar:
        job = bar.add_task(f"task {task_id}", total=100, state="", frames="")
        while True:
            failed = f", {item['failedFrames']} failed" if item["failedFrames"] else ""
            bar.update(job, completed=item["progress"], state=state_name(item["taskStatus"]),
                       frames=f"{item['doneFrames']}/{item['totalFrames']} frames{failed}",
                       description=f"task {task_id} {item['sceneName']}")
            outcome = OUTCOMES.get(item["taskStatus"])
            if outcome is not None:
                return item, outcome
            time.sleep(interval)
            item = task_item(api, task_id)


def report(item: dict, outcome: Exit) -> None:
    """One line on stderr about how a task ended."""
    task_id, status = item["id"], item["taskStatus"]
    if outcome == Exit.OK:
        err.print(f"Task {task_id} is done: {item['doneFrames']}/{item['totalFrames']} frames rendered.",
                  style="green", markup=False, highlight=False)
        return
    advice = ADVICE.get(status, "").format(id=task_id)
    err.print(f"Task {task_id}: {state_name(status)} ({item['doneFrames']}/{item['totalFrames']} frames done, "
              f"{item['failedFrames']} failed){': ' + advice if advice else ''}.", style="red", markup=False,
              highlight=False)
