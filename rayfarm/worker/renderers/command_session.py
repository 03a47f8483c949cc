"""A command session: one bubblewrap sandbox per task and slot, renderers/launcher.py as its pid 1, run after run.

The node starts the launcher once, with the system's Python, in the sandbox a one-shot run of the task would get
(confine.py: the task's inputs read-only; writable, the session's `out/` folder, which holds one folder per
chunk); then it sends one line per run (a chunk runs its command once, or once per frame with `{frame}`) and
reads the run's output until the launcher's end-of-run line, which says the run's exit code and CPU time.
"""

import inspect
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rayfarm.worker.renderers import launcher

SOURCE = inspect.getsource(launcher)
ENDED = "exit"  # the launcher's word after the marker


@dataclass(frozen=True)
class Ran:
    """How one run in a session went, as the launcher says."""

    code: int | None  # exit code, negative: killed by that signal; None: it could not be started (`error`)
    error: str
    cpu: float  # seconds, of every process of the run
    rss: int  # peak resident bytes of one of its processes
    clean: bool  # the sandbox's scratch space is empty again


def session_argv(python: str) -> list[str]:
    """The launcher's command line: `-I` (no environment, no user site, no script folder), `-S` (no site)."""
    return [python, "-I", "-S", "-c", SOURCE]


def run_command(argv: list[str], folder: str | Path) -> dict[str, Any]:
    return {"marker": f"RAYFARM-RUN-{secrets.token_hex(8)}", "argv": list(argv), "folder": str(folder)}


def verdict(line: str, marker: str) -> tuple[str, str, str] | None:
    """(text before the marker, "exit", the launcher's JSON) when `line` ends the run, else None."""
    at = line.find(marker)
    if at < 0:
        return None
    word, _, payload = line[at + len(marker):].strip().partition(" ")
    return line[:at], word, payload


def ran(payload: str) -> Ran:
    """The launcher's end-of-run JSON; ValueError when it is not one."""
    data = json.loads(payload)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    code = data.get("code")
    return Ran(None if code is None else int(code), str(data.get("error") or ""), float(data.get("cpu") or 0.0),
               int(data.get("rss") or 0), data.get("clean") is True)
