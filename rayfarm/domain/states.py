"""Task and frame states, and the one table that says which operation is allowed when.

Every change of a task's state made by a user goes through :func:`check` (is it allowed, and
if not, which code and sentence) and :func:`settle` (what a task's status is once its frames
have changed). The store applies what these decide; it never decides itself.
"""

from collections.abc import Mapping
from enum import IntEnum

from rayfarm.protocol.codes import ApiError, Code


class TaskStatus(IntEnum):
    CREATED = -1  # internal: an id was reserved, nothing submitted (reported as 0)
    WAITING = 0
    RENDERING = 5
    PREPROCESSING = 8
    STOPPED = 10
    ARREARS_STOPPED = 20
    TIMEOUT_STOPPED = 23
    DONE = 25
    DONE_WITH_FAILURES = 30
    ABANDONED = 35
    TEST_DONE = 40
    FAILED = 45


class FrameStatus(IntEnum):
    WAITING = 1
    RENDERING = 2
    STOPPED = 3
    DONE = 4
    FAILED = 5
    WAITING_PREPROCESS = 6
    HELD = 8  # waiting for the priority frames
    TIMED_OUT = 11


class FrameType(IntEnum):
    PRIORITY = 4
    MAIN = 5


# The eleven codes the public API ever reports (the download tool rejects any other).
PUBLIC_TASK_CODES = frozenset({0, 5, 8, 10, 20, 23, 25, 30, 35, 40, 45})
FINISHED = frozenset({TaskStatus.DONE, TaskStatus.DONE_WITH_FAILURES, TaskStatus.FAILED})
UNFINISHED_FRAMES = frozenset({FrameStatus.WAITING, FrameStatus.RENDERING, FrameStatus.HELD,
                               FrameStatus.WAITING_PREPROCESS})
FAILED_FRAMES = frozenset({FrameStatus.FAILED, FrameStatus.TIMED_OUT})
# Tasks that hold the farm's queue: they render, or will, without their owner starting them again
# (40 waits only for full speed). Counted by the active-tasks quota (rayfarm/store/quotas.py).
ACTIVE = frozenset({TaskStatus.WAITING, TaskStatus.RENDERING, TaskStatus.PREPROCESSING, TaskStatus.TEST_DONE})


def public_code(status: int) -> int:
    """The code reported by queryTaskInfo/getTaskList for an internal status."""
    return 0 if status == TaskStatus.CREATED else int(status)


DESCRIPTIONS = {
    TaskStatus.CREATED: "created but not submitted yet",
    TaskStatus.WAITING: "waiting to render",
    TaskStatus.RENDERING: "rendering",
    TaskStatus.PREPROCESSING: "being pre-processed",
    TaskStatus.STOPPED: "stopped",
    TaskStatus.ARREARS_STOPPED: "stopped for arrears",
    TaskStatus.TIMEOUT_STOPPED: "stopped by its over-time limit",
    TaskStatus.DONE: "done",
    TaskStatus.DONE_WITH_FAILURES: "done with failed frames",
    TaskStatus.ABANDONED: "abandoned",
    TaskStatus.TEST_DONE: "waiting for full-speed render after its priority frames",
    TaskStatus.FAILED: "failed",
}


class Op:
    SUBMIT = "submit"
    STOP = "stop"
    START = "start"
    ABORT = "abort"
    DELETE = "delete"
    FULL_SPEED = "full speed"
    SETTINGS = "change settings of"  # priority, node limit, over-time, labels
    UPLOAD_CONFIG = "upload a configuration file to"
    RECOMMIT = "re-render frames of"
    STOP_FRAMES = "stop frames of"


S = TaskStatus
# op -> (states where the op does something, states where it is already done: a no-op success)
RULES: dict[str, tuple[frozenset, frozenset]] = {
    Op.SUBMIT: (frozenset({S.CREATED}), frozenset(set(S) - {S.CREATED})),
    Op.STOP: (frozenset({S.WAITING, S.RENDERING, S.TEST_DONE}),
              frozenset({S.STOPPED, S.TIMEOUT_STOPPED, S.ARREARS_STOPPED})),
    Op.START: (frozenset({S.STOPPED, S.TIMEOUT_STOPPED, S.ARREARS_STOPPED}), frozenset({S.WAITING, S.RENDERING})),
    Op.ABORT: (
        frozenset(set(S) - {S.CREATED, S.DONE, S.DONE_WITH_FAILURES, S.ABANDONED}),
        frozenset({S.ABANDONED}),
    ),
    Op.DELETE: (
        frozenset({S.CREATED, S.STOPPED, S.ARREARS_STOPPED, S.TIMEOUT_STOPPED, S.DONE,
                   S.DONE_WITH_FAILURES, S.ABANDONED, S.TEST_DONE, S.FAILED}),
        frozenset(),
    ),
    Op.FULL_SPEED: (frozenset({S.WAITING, S.RENDERING, S.TEST_DONE}), frozenset()),
    Op.SETTINGS: (frozenset(S), frozenset()),
    Op.UPLOAD_CONFIG: (frozenset({S.CREATED}), frozenset()),
    Op.RECOMMIT: (
        frozenset({S.WAITING, S.RENDERING, S.STOPPED, S.TIMEOUT_STOPPED, S.DONE, S.DONE_WITH_FAILURES,
                   S.FAILED, S.TEST_DONE}),
        frozenset(),
    ),
    Op.STOP_FRAMES: (frozenset({S.WAITING, S.RENDERING, S.TEST_DONE}), frozenset()),
}


def _advice(op: str, status: TaskStatus) -> str:
    if status == S.CREATED:
        return "submit it first"
    if op == Op.START and status == S.ABANDONED:
        return "an abandoned task cannot be started again; clone it into a new task instead"
    if op == Op.START and status == S.TEST_DONE:
        return "use full speed to render the rest of its frames"
    if op == Op.START and status in FINISHED:
        return "re-render its failed frames with recommitTasks instead"
    if op == Op.DELETE:
        return "stop the task first, then delete it"
    if op == Op.ABORT and status in FINISHED:
        return "it has already finished, so there is nothing left to abort"
    if op == Op.UPLOAD_CONFIG:
        return "configuration files can only change before submit; create a new task (or clone this one)"
    if op == Op.FULL_SPEED:
        return "full speed only applies to waiting or rendering tasks"
    if op in (Op.STOP, Op.STOP_FRAMES):
        return "there is nothing left to stop"
    if op == Op.RECOMMIT and status == S.ABANDONED:
        return "an abandoned task cannot render again; clone it into a new task instead"
    return "check the task's status with queryTaskInfo"


def check(op: str, status: int, task_id: int, deleted: bool = False) -> bool:
    """Decide whether ``op`` may run on a task in ``status``.

    Returns True when the op has work to do, False when the task is already where the op
    would put it (a repeat: answer success, change nothing). Raises ApiError(718) otherwise.
    """
    status = TaskStatus(status)
    if deleted and op != Op.DELETE:
        raise ApiError(Code.TASK_CANNOT_OPERATE,
                       f"Cannot {op} task {task_id}: it is deleted (in the recycle bin) "
                       f"and cannot be changed any more.")
    if deleted:
        return False
    active, repeat = RULES[op]
    if status in active:
        return True
    if status in repeat:
        return False
    if status == S.CREATED:
        message = f"Cannot {op} task {task_id}: the task has not been submitted yet; submit it first."
    else:
        message = (f"Cannot {op} task {task_id}: it is {DESCRIPTIONS[status]} (status {public_code(status)}); "
                   f"{_advice(op, status)}.")
    raise ApiError(Code.TASK_CANNOT_OPERATE, message)


HELD_STATES = frozenset({S.CREATED, S.STOPPED, S.ARREARS_STOPPED, S.TIMEOUT_STOPPED, S.ABANDONED,
                         S.TEST_DONE})


def settle(status: int, counts: Mapping[int, int], *, priority_pending: int,
           pause_after_test: bool) -> tuple[int, bool]:
    """The task status once its frames are as ``counts`` says (frame status -> number).

    Returns (new status, release_held): release_held is True when frames held behind the
    priority frames must now be released (priority frames finished, no pause requested).
    A task held by an operation (stopped, abandoned, paused, not submitted) keeps its status.
    """
    status = TaskStatus(status)
    if status in HELD_STATES:
        return int(status), False
    held = counts.get(FrameStatus.HELD, 0)
    waiting = counts.get(FrameStatus.WAITING, 0) + counts.get(FrameStatus.WAITING_PREPROCESS, 0)
    if held and priority_pending == 0:
        if pause_after_test and not counts.get(FrameStatus.RENDERING, 0) and not waiting:
            return int(S.TEST_DONE), False
        if not pause_after_test:
            return settle(status, {**counts, FrameStatus.WAITING: counts.get(FrameStatus.WAITING, 0) + held,
                                   FrameStatus.HELD: 0},
                          priority_pending=0, pause_after_test=False)[0], True
    if counts.get(FrameStatus.RENDERING, 0):
        return int(S.RENDERING), False
    if waiting or held:  # a task that has started keeps "rendering" between two chunks
        return int(S.RENDERING if status == S.RENDERING else S.WAITING), False
    if counts.get(FrameStatus.STOPPED, 0):
        return int(S.STOPPED), False
    failed = sum(counts.get(s, 0) for s in FAILED_FRAMES)
    done = counts.get(FrameStatus.DONE, 0)
    if failed and not done:
        return int(S.FAILED), False
    if failed:
        return int(S.DONE_WITH_FAILURES), False
    return int(S.DONE), False
