"""What each operation does to a task and its frames (pure). The store only persists what these return.

``states.RULES``/``check`` say whether an operation may run; the functions here say what it then
changes: the task's new status (with ``pre_status`` always the public code it had, and why it
stopped), and which frames move from which statuses to which, with what stop reason. Frames of
running nodes are taken out of their leases whenever they move (their nodes are told to stop).
After frames move, ``settle`` (states.py) decides the task status from its frames where asked.
"""

from dataclasses import dataclass, field

from rayfarm.domain.states import FINISHED, FrameStatus, TaskStatus, public_code

F, S = FrameStatus, TaskStatus
KEEP = object()  # a task field the change leaves as it is


@dataclass(frozen=True)
class FrameMove:
    """Frames in one of ``before`` go to ``after``, with ``reason`` as their stop reason (None clears it)."""

    before: frozenset
    after: FrameStatus
    reason: str | None = None
    only_reason: str | None = None  # only frames that stopped for this reason
    reset_progress: bool = True
    rerender: bool = False  # a re-render: attempts start again, the re-render count goes up


@dataclass(frozen=True)
class TaskChange:
    """A task's new status (None: ``settle`` decides from its frames) and its frames' moves."""

    status: TaskStatus | None
    pre_status: int | None = None
    stop_type: object = KEEP  # str, None (cleared) or KEEP
    completed: object = KEEP  # "now", None (cleared) or KEEP
    frames: tuple[FrameMove, ...] = ()
    settle: bool = False  # settle the task from its frames once they moved
    values: dict = field(default_factory=dict)  # other task fields the operation sets


RERENDERABLE = frozenset({F.DONE, F.FAILED, F.TIMED_OUT, F.STOPPED})  # frames a re-render may choose
STOPPABLE = frozenset({F.WAITING, F.RENDERING, F.HELD})  # frames stopTaskFrames may choose
RELEASE_HELD = FrameMove(frozenset({F.HELD}), F.WAITING, reset_progress=False)  # the priority frames finished


def _from(status: int) -> int:
    return public_code(status)


# ---------------------------------------------------------------- operations of users

def stop(status: int) -> TaskChange:
    """Stop: waiting and rendering frames stop (renders are killed); the task is stopped (10)."""
    return TaskChange(S.STOPPED, _from(status), stop_type="user",
                      frames=(FrameMove(frozenset({F.WAITING, F.RENDERING}), F.STOPPED, "user"),))


def start(status: int) -> TaskChange:
    """Start a stopped task: stopped frames, and the frame an over-time stop killed, wait again."""
    return TaskChange(S.WAITING, _from(status), stop_type=None, completed=None, settle=True, frames=(
        FrameMove(frozenset({F.STOPPED}), F.WAITING, reset_progress=False),
        FrameMove(frozenset({F.TIMED_OUT}), F.WAITING, only_reason="overtime", reset_progress=False)))


def abort(status: int) -> TaskChange:
    """Abandon: every unfinished frame stops for good; finished frames and outputs stay (35)."""
    return TaskChange(S.ABANDONED, _from(status), stop_type="abort", completed="now",
                      frames=(FrameMove(frozenset({F.WAITING, F.RENDERING, F.HELD}), F.STOPPED, "abort"),))


def full_speed(status: int) -> TaskChange:
    """Release the frames held behind the priority frames; a task paused after them (40) waits again."""
    move = (RELEASE_HELD,)
    if status == S.TEST_DONE:
        return TaskChange(S.WAITING, _from(status), frames=move, settle=True, values={"pause_after_test": False})
    return TaskChange(None, frames=move, settle=True, values={"pause_after_test": False})


def rerender(status: int, frame_statuses: frozenset) -> TaskChange:
    """Render chosen frames again (attempts start over); a finished or paused task waits again."""
    move = (FrameMove(frame_statuses, F.WAITING, rerender=True),)
    if status in FINISHED or status == S.TEST_DONE:
        return TaskChange(S.WAITING, _from(status), completed=None, frames=move, settle=True)
    return TaskChange(None, frames=move, settle=True)


def stop_frames(frame_statuses: frozenset) -> TaskChange:
    """Stop chosen waiting or rendering frames (their renders are killed); the task settles."""
    return TaskChange(None, frames=(FrameMove(frame_statuses & STOPPABLE, F.STOPPED, "user"),), settle=True)


def over_time_stop(status: int) -> TaskChange:
    """A frame rendered longer than the task's over-time stop: that frame is timed out (11, see
    ``OVER_TIME_FRAME``), the task's other waiting and rendering frames stop, the task is stopped (23)."""
    return TaskChange(S.TIMEOUT_STOPPED, _from(status), stop_type="overtime",
                      frames=(FrameMove(frozenset({F.WAITING, F.RENDERING}), F.STOPPED, "overtime"),))


OVER_TIME_FRAME = FrameMove(frozenset({F.RENDERING}), F.TIMED_OUT, "overtime")

# ---------------------------------------------------------------- what happens to a leased frame

LEASE = FrameMove(frozenset({F.WAITING}), F.RENDERING)  # a node takes the chunk
DONE = FrameMove(frozenset({F.RENDERING}), F.DONE)  # its result is in


def requeue(reason: str) -> FrameMove:
    """A chunk whose node went away (lost, restarted, disabled) or whose lease ran out waits again: no attempt."""
    return FrameMove(frozenset({F.RENDERING}), F.WAITING, reason[:32])


def after_failure(attempts: int, max_attempts: int, *, timed_out: bool) -> tuple[FrameStatus, int, str]:
    """A failed attempt (the render failed, or ran past ``job_stop_time``): (status, attempts, stop reason).
    The chunk waits again until the task's attempt limit, then it is failed (5) or timed out (11)."""
    attempts += 1
    final = F.TIMED_OUT if timed_out else F.FAILED
    return (final if attempts >= max(1, max_attempts) else F.WAITING), attempts, "timeout" if timed_out else "error"
