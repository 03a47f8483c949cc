"""Per-user quotas: the farm's defaults, limits as administrators write them, and the refusal sentences.

Which tasks count as active is ``states.ACTIVE``; the store (``rayfarm/store/quotas.py``) does the counting
and raises the errors worded here. A limit of ``None`` means unlimited (for frames: the farm's own
limit of ``frames.MAX_FRAMES`` per task still holds).
"""

import math
import re

from rayfarm.domain.frames import MAX_FRAMES

DEFAULT_ACTIVE_TASKS = 1000  # a new user's limit; frames per task and storage start unlimited
MAX_COUNT = 2**31 - 1
MAX_STORAGE = 2**62
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
UNLIMITED = ("0", "none", "unlimited")
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]?)(?:I?B)?", re.IGNORECASE)


def parse_count(text: str, what: str, highest: int = MAX_COUNT) -> int | None:
    """A limit written as a whole number; 0 / none / unlimited is None. ValueError with a sentence otherwise."""
    text = text.strip().lower()
    if text in UNLIMITED:
        return None
    if not text.isdigit() or int(text) > highest:
        raise ValueError(f"{what} is a whole number from 1 to {highest:,}, or 0 / none for unlimited; "
                         f"{text!r} is not.")
    return int(text)


def parse_frames(text: str) -> int | None:
    return parse_count(text, "--frames-per-task (the farm itself never takes more than "
                             f"{MAX_FRAMES:,} frames in one task)", MAX_FRAMES)


def parse_size(text: str) -> int | None:
    """A storage limit like ``500G``, ``1.5T`` or ``200000`` (bytes); units are binary (1G = 1024³ bytes)."""
    text = text.strip()
    if text.lower() in UNLIMITED:
        return None
    match = _SIZE.fullmatch(text)
    size = math.ceil(float(match.group(1)) * UNITS[match.group(2).upper()]) if match else 0
    if not 0 < size <= MAX_STORAGE:
        raise ValueError(f"--storage is a size like 500G, 2T or 750M (binary units), or 0 / none for unlimited; "
                         f"{text!r} is not.")
    return size


def show_size(size: int) -> str:
    """Bytes as people read them: ``512 bytes``, ``1.5 GiB``."""
    for unit in "PTGMK":
        if size >= UNITS[unit]:
            return f"{size / UNITS[unit]:.1f}".removesuffix(".0") + f" {unit}iB"
    return f"{size} byte" if size == 1 else f"{size} bytes"


def size_option(size: int) -> str:
    """A ``--storage`` value of at least ``size`` in whole units: ``40G``, ``2T``."""
    for unit in "PTGMK":
        if size >= UNITS[unit]:
            return f"{math.ceil(size / UNITS[unit])}{unit}"
    return str(max(size, 1))


def _many(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _raise(name: str, option: str) -> str:
    return f"ask the farm's administrator to raise it: rayfarm user quota {name} {option}."


def active_refusal(name: str, limit: int, active: int, adding: int) -> str:
    more = f", and this would add {adding}" if adding > 1 else ""
    return (f"Your account may have at most {_many(limit, 'task')} waiting or rendering (you have {active}{more}); wait "
            f"for some to finish, or {_raise(name, f'--active-tasks {max(2 * limit, active + adding)}')}")


def unsubmitted_refusal(name: str, limit: int, unsubmitted: int, adding: int) -> str:
    return (f"Your account may have at most {_many(limit, 'task')} created but not submitted (you have {unsubmitted}, and "
            f"this would create {adding} more); submit or delete some of them (deleteTask), or "
            f"{_raise(name, f'--active-tasks {max(2 * limit, unsubmitted + adding)}')}")


def frames_refusal(name: str, limit: int, frames: int) -> str:
    return (f"Your account may render at most {_many(limit, 'frame')} in one task (this task has {frames}); split the "
            f"frame range over several tasks, or {_raise(name, f'--frames-per-task {frames}')}")


def upload_refusal(name: str, limit: int, stored: int, reserved: int, size: int) -> str:
    pending = f" and {show_size(reserved)} held for unfinished uploads" if reserved else ""
    needed = stored + reserved + size
    return (f"Your account may store at most {show_size(limit)} (you use {show_size(stored)}{pending}, render "
            f"outputs included), so this {show_size(size)} upload does not fit; ask the farm's administrator to "
            f"free space, or to raise the limit: rayfarm user quota {name} --storage "
            f"{size_option(max(2 * limit, needed))}.")


def storage_full_refusal(name: str, limit: int, stored: int) -> str:
    return (f"Your account may store at most {show_size(limit)} and uses {show_size(stored)} (render outputs "
            f"included), so a new task's outputs would not fit; download what you need and ask the farm's "
            f"administrator to free space, or to raise the limit: rayfarm user quota {name} --storage "
            f"{size_option(max(2 * limit, stored + limit))}.")
