"""The launcher of a command session: pid 1 of the session's bubblewrap sandbox, it runs the task's chunks one by one.

It runs in the system's Python (`python3 -I -S -c SOURCE`, renderers/command_session.py), which every sandbox
shows: standard library only, and Python 3.8 or later (never imported by anything of rayfarm but its tests).
It reads one JSON line per run on stdin, `{"marker", "argv", "folder"}`, and runs `argv` in `folder` (the chunk's
output folder), as a one-shot confined run does: the sandbox's environment, stdin /dev/null, stdout and stderr
its own (the node's log stream). When that process ended, every process left in the sandbox is killed
(`kill(-1, SIGKILL)`: as pid 1 of its PID namespace it reaches every other process there, and only those) and
reaped, the sandbox's scratch space is emptied (/tmp, /dev/shm, /dev/mqueue, SysV IPC objects; folders the
sandbox mounted there from the node are left alone), and it prints `<marker> exit {"code", "error", "cpu", "rss",
"clean"}`: the exit code (negative: the signal that killed it; None when it could not start, `error` saying why),
the CPU seconds and peak resident bytes of every process it reaped for the run, and whether the scratch space
is empty again (if not, the node ends the session after this chunk). The marker is random per run and only the
node and the launcher know it: the run's processes cannot read the launcher's stdin or memory (it is not
dumpable), so nothing they print ends a run.
"""

import ctypes
import json
import os
import signal
import stat
import sys

PR_SET_DUMPABLE = 4
IPC_RMID = 0
SCRATCH = ("/tmp", "/dev/shm", "/dev/mqueue")
SYSV = (("/proc/sysvipc/shm", "shmctl"), ("/proc/sysvipc/sem", "semctl"), ("/proc/sysvipc/msg", "msgctl"))
DEFAULTS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT)  # what Python ignores or handles: a run starts with none


def exit_code(status):
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def run(command, env):
    """Run one command, then end every process it left: (exit code or None, error, CPU seconds, peak RSS bytes)."""
    argv, code, error, cpu, rss = command["argv"], None, "", 0.0, 0
    try:
        os.chdir(command["folder"])
        main = os.posix_spawnp(argv[0], argv, env, setsigdef=DEFAULTS,
                               file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)])
    except (OSError, ValueError, IndexError) as exc:
        main, error = None, getattr(exc, "strerror", None) or str(exc)
    finally:
        os.chdir("/")
    ended = main is None
    while True:
        if ended:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            break
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, usage.ru_maxrss * 1024)
        if pid == main:
            code, ended = exit_code(status), True
    return code, error, cpu, rss


def clear(folder, device):
    """Remove everything under `folder` that lies on `device`; True when something is left: a mount point (the
    node's folders, when they are under /tmp), or a folder that holds one."""
    left = False
    try:
        entries = list(os.scandir(folder))
    except PermissionError:
        os.chmod(folder, 0o700)
        entries = list(os.scandir(folder))
    for entry in entries:
        info = entry.stat(follow_symlinks=False)
        if info.st_dev != device:
            left = True
        elif stat.S_ISDIR(info.st_mode):
            if clear(entry.path, device):
                left = True
            else:
                remove(os.rmdir, entry.path, folder)
        else:
            remove(os.unlink, entry.path, folder)
    return left


def remove(how, path, folder):
    try:
        how(path)
    except PermissionError:  # the run took its own rights away: it owned the folder, so the launcher does too
        os.chmod(folder, 0o700)
        how(path)


def clear_ipc(libc):
    for table, call in SYSV:
        try:
            with open(table) as handle:
                ids = [int(line.split()[1]) for line in handle.readlines()[1:] if line.strip()]
        except OSError:
            continue
        for ipc_id in ids:
            if call == "semctl":
                libc.semctl(ipc_id, 0, IPC_RMID)
            else:
                libc[call](ipc_id, IPC_RMID, None)


def tidy(libc):
    """Empty the scratch space; False when something of the run's could not be removed."""
    clean = True
    for folder in SCRATCH:
        try:
            clear(folder, os.lstat(folder).st_dev)
        except FileNotFoundError:
            continue
        except OSError:
            clean = False
    try:
        clear_ipc(libc)
    except (OSError, ValueError):
        clean = False
    return clean


def main():
    if os.getpid() != 1:  # kill(-1) anywhere else would reach every process of the node's user
        sys.exit("rayfarm launcher: not pid 1 of a sandbox; refusing to run")
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # pid 1 ignores signals it has no handler for
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        sys.exit("rayfarm launcher: cannot make itself undumpable; refusing to run")
    env = dict(os.environ)
    for line in sys.stdin.buffer:
        command = json.loads(line)
        code, error, cpu, rss = run(command, env)
        result = {"code": code, "error": error, "cpu": round(cpu, 6), "rss": rss, "clean": tidy(libc)}
        os.write(1, (command["marker"] + " exit " + json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main()
