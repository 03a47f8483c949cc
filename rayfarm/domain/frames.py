"""Frame ranges (``1-250[1]``, ``1,3,5-9[2]``), priority frames and chunking.

A chunk is what one node renders in one go: frames ``start..end`` every ``step``.
"""

import re
from dataclasses import dataclass

from rayfarm.protocol.codes import ApiError, Code

MAX_FRAMES = 1_000_000  # frames in one task
MAX_FRAME_NUMBER = 10_000_000
MAX_ITEMS = 10_000  # comma-separated items in one range string

_ITEM = re.compile(r"([0-9]{1,9})(?:-([0-9]{1,9}))?(?:\[([0-9]{1,9})\])?")  # ASCII digits only
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Run:
    """Frames start, start+step, ..., up to end (inclusive)."""

    start: int
    end: int
    step: int = 1

    def __len__(self) -> int:
        return (self.end - self.start) // self.step + 1

    def frames(self) -> range:
        return range(self.start, self.end + 1, self.step)


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    step: int
    priority: bool = False

    @property
    def index(self) -> str:
        """The ``frameIndex`` shown to users: ``"7"``, ``"5-8"`` or ``"1-9[2]"``."""
        if self.start == self.end:
            return str(self.start)
        if self.step == 1:
            return f"{self.start}-{self.end}"
        return f"{self.start}-{self.end}[{self.step}]"

    def frames(self) -> range:
        return range(self.start, self.end + 1, self.step)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _bad(text: str, why: str) -> ApiError:
    return ApiError(Code.INVALID_PARAMETER,
                    f"Invalid frame range {_short(text)!r}: {_short(why, 120)}. Write it like \"1-250[1]\" "
                    f"(start-end[step]) or a comma-separated list such as \"1,5-9,20-30[2]\".")


def parse_range(text: object) -> list[Run]:
    """Parse a frame range string into runs, refusing absurd sizes before expanding anything."""
    if not isinstance(text, str):
        raise _bad(str(text), "it must be a string")
    cleaned = _SPACE.sub("", text)
    if not cleaned:
        raise _bad(text, "it is empty")
    items = cleaned.split(",")
    if len(items) > MAX_ITEMS:
        raise _bad(text, f"it has more than {MAX_ITEMS} items")
    runs: list[Run] = []
    total = 0
    for item in items:
        match = _ITEM.fullmatch(item)
        if not match:
            raise _bad(text, f"{item!r} is not a frame number or a start-end[step] range")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        step = int(match.group(3)) if match.group(3) is not None else 1
        if step < 1:
            raise _bad(text, "the step must be 1 or more")
        if end < start:
            raise _bad(text, f"{item!r} ends before it starts")
        if end > MAX_FRAME_NUMBER:
            raise _bad(text, f"frame numbers above {MAX_FRAME_NUMBER} are not supported")
        run = Run(start, end - (end - start) % step, step)
        total += len(run)
        if total > MAX_FRAMES:
            raise ApiError(Code.TOO_MANY_FRAMES,
                           f"The frame range {_short(text)!r} has more than {MAX_FRAMES} frames; "
                           f"split the render into several tasks.")
        runs.append(run)
    if len(runs) > 1:
        seen: set[int] = set()
        for run in runs:
            frames = set(run.frames())
            if seen & frames:
                raise _bad(text, f"frame {min(seen & frames)} is listed twice")
            seen |= frames
    return runs


def frame_count(runs: list[Run]) -> int:
    return sum(len(run) for run in runs)


@dataclass(frozen=True)
class PreFrames:
    first: bool = False
    middle: bool = False
    last: bool = False
    custom: tuple[Run, ...] = ()


def parse_pre_frames(text: object) -> PreFrames:
    """``pre_frames``: three 0/1 flags (first, middle, last), optionally ``:<frame list>``."""
    if text is None or text == "":
        return PreFrames()
    if not isinstance(text, str):
        raise ApiError(Code.ILLEGAL_TEST_FRAMES, f"Invalid pre_frames {text!r}: it must be a string like \"100\".")
    flags, _, custom = text.strip().partition(":")
    if not re.fullmatch(r"[01]{3}", flags):
        raise ApiError(Code.ILLEGAL_TEST_FRAMES,
                       f"Invalid pre_frames {text!r}: start with three 0/1 flags for the first, middle and last "
                       f"frame (e.g. \"100\"), optionally followed by \":\" and a frame list (\"000:1,5-7[1]\").")
    runs: tuple[Run, ...] = ()
    if custom.strip():
        try:
            runs = tuple(parse_range(custom))
        except ApiError as exc:
            raise ApiError(Code.ILLEGAL_TEST_FRAMES, f"Invalid priority frames in pre_frames: {exc.message}") from None
        if frame_count(list(runs)) > 1000:
            raise ApiError(Code.ILLEGAL_TEST_FRAMES, "pre_frames names more than 1000 priority frames; name fewer.")
    return PreFrames(flags[0] == "1", flags[1] == "1", flags[2] == "1", runs)


def _nth_frame(runs: list[Run], n: int) -> int:
    for run in runs:
        if n < len(run):
            return run.start + n * run.step
        n -= len(run)
    raise IndexError(n)


def priority_frames(runs: list[Run], pre: PreFrames) -> list[int]:
    """The priority frames that belong to the task's range, sorted, without repeats."""
    total = frame_count(runs)
    if total == 0:
        return []
    chosen: set[int] = set()
    if pre.first:
        chosen.add(_nth_frame(runs, 0))
    if pre.middle:
        chosen.add(_nth_frame(runs, (total - 1) // 2))
    if pre.last:
        chosen.add(_nth_frame(runs, total - 1))
    if pre.custom:
        wanted = {frame for run in pre.custom for frame in run.frames()}
        members = [frame for frame in sorted(wanted) if _contains(runs, frame)]
        missing = sorted(wanted - set(members))
        if missing:
            raise ApiError(Code.ILLEGAL_TEST_FRAMES,
                           f"Priority frames {missing[:10]} are not in the task's frame range; "
                           f"choose frames the task renders.")
        chosen.update(members)
    return sorted(chosen)


def _contains(runs: list[Run], frame: int) -> bool:
    return any(run.start <= frame <= run.end and (frame - run.start) % run.step == 0 for run in runs)


def chunk(runs: list[Run], per_chunk: int, priority: list[int] | None = None) -> list[Chunk]:
    """Split the range into priority chunks (one frame each) then main chunks of ``per_chunk`` frames.

    Main chunks never contain a priority frame and always form an arithmetic run, so a renderer can
    render them with start/end/step.
    """
    if per_chunk < 1:
        raise ValueError("per_chunk must be >= 1")
    skip = set(priority or ())
    chunks = [Chunk(frame, frame, 1, True) for frame in sorted(skip)]
    for run in runs:
        pending: list[int] = []
        for frame in run.frames():
            if frame in skip:
                chunks.extend(_close(pending, run.step))
                pending = []
                continue
            pending.append(frame)
            if len(pending) == per_chunk:
                chunks.extend(_close(pending, run.step))
                pending = []
        chunks.extend(_close(pending, run.step))
    return chunks


def _close(pending: list[int], step: int) -> list[Chunk]:
    if not pending:
        return []
    return [Chunk(pending[0], pending[-1], step if len(pending) > 1 else 1)]
