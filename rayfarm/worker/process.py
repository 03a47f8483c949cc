"""Render subprocesses in their own process group: start, signal the whole group, sample CPU/memory."""

import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil

log = logging.getLogger(__name__)
CPUS = os.cpu_count() or 1
PR_SET_PDEATHSIG = 1
TOKEN_VARIABLE = "RAYFARM_WORKER_TOKEN"  # the node may take its token from the environment: renders never get it


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def _die_with_node() -> Callable[[], None] | None:
    """A preexec hook that makes the render die (SIGKILL) when the node's process dies.

    The render runs in its own session so that a stop can kill its whole group; without this a
    node killed with SIGKILL (or crashing) would leave it rendering on, unseen: the farm gives the
    chunk to another node, and the orphan keeps burning the machine. Linux only (prctl); the
    signal comes when the thread that started the render ends, and that thread waits for it.
    """
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def hook() -> None:  # runs in the child between fork and exec: no imports, no locks
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the node died before the hook ran
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def start(argv: list[str], cwd: Path, confined: bool = False) -> subprocess.Popen:
    """Start `argv` (no shell) as the leader of a new session/process group, stdout+stderr as text lines.

    `confined`: `argv` is a bubblewrap command line (confine.py). Its --die-with-parent kills the render
    when the node dies, so no preexec hook is needed (a hook rules out CPython's fast vfork path; bubblewrap
    sets the death signal as it starts, so only a node killed within those first milliseconds would miss
    it), and bubblewrap gets an empty environment: nothing of the node's can reach the job. Unconfined, the
    render gets the node's environment without the worker token, and on Linux dies with the node through
    `_die_with_node`.
    """
    if confined:
        env, hook = {}, None
    else:
        env = {name: value for name, value in os.environ.items() if name != TOKEN_VARIABLE}
        env["PYTHONUNBUFFERED"] = "1"
        hook = _die_with_node()
    return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, text=True, encoding="utf-8",
                            errors="replace", bufsize=1, shell=False, preexec_fn=hook)


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to every process of the group; False when the group is already gone."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        log.warning("cannot signal process group %d: %s", pgid, exc)
        return False


def wait_exited(pid: int) -> None:
    """Block until the child `pid` has exited, without reaping it (its pid and group stay reserved)."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        pass


def reap(proc: subprocess.Popen) -> tuple[int, float, int]:
    """Wait for the exited `proc`: (return code, CPU seconds of it and its waited-for children, peak RSS bytes)."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # already reaped elsewhere
        return proc.wait(), 0.0, 0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def kill_leftovers(pgid: int) -> None:
    """SIGKILL whatever the finished leader left behind in its group."""
    signal_group(pgid, signal.SIGKILL)


class TreeSampler:
    """CPU (percent of the whole machine) and resident memory (bytes) of a process and its descendants."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.known: dict[int, psutil.Process] = {}
        # Not sampled here: a process-tree scan reads every /proc entry, and this runs as the render starts.
        self._primed = False

    def sample(self) -> tuple[float, int] | None:
        """(cpu, memory) now, or None when the process is gone (and on the first call, which only sets
        the CPU baseline)."""
        try:
            root = self.known.get(self.pid) or psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None
        cpu, memory, alive = 0.0, 0, {}
        for proc in tree:
            proc = self.known.get(proc.pid, proc)
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                cpu += proc.cpu_percent(None)
                memory += proc.memory_info().rss
                alive[proc.pid] = proc
            except psutil.Error:
                continue
        self.known = alive
        if not alive or not self._primed:
            self._primed = True
            return None
        return round(cpu / CPUS, 2), memory
