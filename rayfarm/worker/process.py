"""Render subprocesses in their own process group: start, signal the whole group, sample CPU/memory."""

import ctypes
import errno
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

log = logging.getLogger(__name__)
CPUS = os.cpu_count() or 1
PR_SET_PDEATHSIG = 1
SETPRIV = "setpriv"
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
    """A preexec hook that makes the render die (SIGKILL) when the node's process dies: only where setpriv
    (util-linux) is missing, since a preexec hook rules out CPython's fast vfork path (see `start`)."""
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def hook() -> None:  # runs in the child between fork and exec: no imports, no locks
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the node died before the hook ran
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


@functools.lru_cache(maxsize=1)
def _setpriv() -> str | None:
    """util-linux's setpriv when it can set the death signal (`--pdeathsig`, util-linux >= 2.33), else None."""
    if not sys.platform.startswith("linux"):
        return None
    found = shutil.which(SETPRIV)
    if found is None:
        return None
    try:
        check = subprocess.run([found, "--pdeathsig", "KILL", "true"], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return found if check.returncode == 0 else None


def _program(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    """argv[0] as Popen would find it (PATH of `env`, or relative to `cwd`); OSError as Popen raises it."""
    name = argv[0]
    if os.sep in name:
        path = name if os.path.isabs(name) else os.path.join(cwd, name)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        return name
    found = shutil.which(name, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
    return found


def node_environment() -> dict[str, str]:
    """What an unconfined render gets: the node's environment without the worker token, unbuffered Python."""
    env = {name: value for name, value in os.environ.items() if name != TOKEN_VARIABLE}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(argv: list[str], cwd: Path, confined: bool = False, stdin: bool = False) -> subprocess.Popen:
    """Start `argv` (no shell) as the leader of a new session/process group, stdout+stderr as text lines
    (`stdin`: a pipe to write to, else /dev/null).

    The render dies with the node (SIGKILL when the thread that started it ends: start it from a thread that
    outlives it) without a preexec hook, which would rule out CPython's vfork path and cost a full fork of the
    node's threaded process per chunk. `confined`: `argv` is a bubblewrap command line (confine.py): its
    --die-with-parent kills the render when the node dies (bubblewrap sets the death signal as it starts,
    so only a node killed within those first milliseconds would miss it), and bubblewrap gets an empty
    environment: nothing of the node's can reach the job. Unconfined, the render gets the node's environment
    without the worker token and runs under `setpriv --pdeathsig KILL` (util-linux), which sets the same
    death signal and execs it; where setpriv cannot, a preexec hook does (Linux), else nothing does.
    """
    hook = None
    if confined:
        env: dict[str, str] = {}
    else:
        env = node_environment()
        setpriv = _setpriv()
        if setpriv is not None:
            argv = [setpriv, "--pdeathsig", "KILL", "--", _program(argv, cwd, env), *argv[1:]]
        else:
            hook = _die_with_node()
    return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True,
                            encoding="utf-8", errors="replace", bufsize=1, shell=False, preexec_fn=hook)


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


FIRST_SAMPLE = 0.9  # seconds into a run before its processes are looked at (a shorter run is never sampled)


def tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc/<pid>/task/<tid>/children (no scan of every process); psutil's scan
    where the kernel does not list children."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children", "rb") as handle:
                    todo.extend(int(child) for child in handle.read().split())
            except FileNotFoundError:
                if not os.path.exists(f"/proc/{current}/task/{task}"):
                    continue  # the thread ended meanwhile
                return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
            except OSError:
                continue
    return found


class TreeSampler:
    """CPU (percent of the whole machine) and resident memory (bytes) of a process and its descendants."""

    def __init__(self, pid: int, since: float) -> None:
        self.pid = pid
        self.since = since  # time.monotonic() when the run began
        self.known: dict[int, psutil.Process] = {}
        self._primed = False

    def sample(self) -> tuple[float, int] | None:
        """(cpu, memory) now, or None when the process is gone, in the run's first FIRST_SAMPLE seconds (a short
        run costs no look at /proc) and on the first look, which only sets the CPU baseline."""
        if time.monotonic() - self.since < FIRST_SAMPLE:
            return None
        try:
            pids = tree(self.pid)
        except psutil.Error:
            return None
        cpu, memory, alive = 0.0, 0, {}
        for pid in pids:
            try:
                proc = self.known.get(pid) or psutil.Process(pid)
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                cpu += proc.cpu_percent(None)
                memory += proc.memory_info().rss
                alive[pid] = proc
            except psutil.Error:
                continue
        self.known = alive
        if not alive or not self._primed:
            self._primed = True
            return None
        return round(cpu / CPUS, 2), memory
