"""Render jobs in a bubblewrap sandbox (Debian's `bubblewrap`): what a job may read, write and reach.

A confined job sees the system read-only (/usr and the /bin, /sbin, /lib* links or folders; from /etc
only what programs need to start: users and groups, the dynamic linker's cache, fonts, time zone,
alternatives, the mount table), its inputs read-only (the job's folder on the node when the scene and
assets were downloaded there, else the cached scene file, or the shared root of a scene read in place),
its output folder writable, and a private /tmp that is also its HOME (with /dev/shm and /dev/mqueue, its only
other writable places: the sandbox's root and /dev are read-only). Everything sits at its real path, so
placeholders, logs and Blender's absolute paths stay as they are; the folders above them exist for the
job but hold nothing else. Nothing more of the machine exists for it: not the farm's data dir (secret.key,
the database), not the node's cache or other jobs' folders, not any home folder. It has a PID namespace
and a /proc of its own (no other process, hence no token in a command line or an environment), a minimal
/dev (no GPU devices), no capabilities even when the node runs as root, and no network (an empty network
namespace: the server and a PostgreSQL database on this machine cannot be reached; a renderer that needs
a license server needs `--unconfined-commands`). Its environment is only ENV, and bubblewrap itself starts
with an empty one (nothing of the node's environment reaches the job, whatever bubblewrap does with it).

The job's program is pid 1 of its namespace (`--as-pid-1`): with bubblewrap's own init in between, the
node would not get the job's CPU time (bubblewrap's outer process exits without reaping that init, so the
kernel's accounting of the run is lost). `--die-with-parent` kills it (SIGKILL) when bubblewrap dies, and
the end of a namespace's pid 1 kills every process in it, whatever session it moved to: a stop (the node
signals bubblewrap's process group) or the node's death leaves nothing behind.

A command session (renderers/command_session.py) is this same sandbox with renderers/launcher.py as its pid 1,
run by a Python of the system's folders (`python`: found and tried once, by `probe`), which every sandbox shows.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rayfarm.worker.renderers import command_session

log = logging.getLogger(__name__)

PROGRAM = "bwrap"
COMMAND = "command"  # the software that runs a user's own programs (renderers/command.py)
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC = ("passwd", "group", "nsswitch.conf", "hosts", "ld.so.cache", "localtime", "fonts", "alternatives", "mtab")
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
       "PYTHONUNBUFFERED": "1"}
EXEC_FAILED = "bwrap: execvp "  # how bubblewrap says that the job's program could not be started


class ConfinementError(Exception):
    """bubblewrap is missing or does not work on this machine; the message says why."""


def _system() -> list[str]:
    """Read-only system folders (a link such as Debian's /bin -> usr/bin is made as a link) and /etc's bits."""
    args: list[str] = []
    for path in SYSTEM + tuple(f"/etc/{name}" for name in ETC):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


class Sandbox:
    """The bubblewrap command line of this node: the common part is built once, a job adds its own folders."""

    def __init__(self, program: str, python: str | None = None) -> None:
        self.program = program
        self.python = python  # runs the launcher of command sessions; None: each command run gets a sandbox
        env = [arg for name, value in ENV.items() for arg in ("--setenv", name, value)]
        # --unshare-all: user (when possible), IPC, PID, network, UTS and cgroup namespaces
        self.prefix = [program, "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session", "--cap-drop",
                       "ALL", "--clearenv", *env, *_system(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                       "--tmpfs", "/dev/shm", "--mqueue", "/dev/mqueue"]

    def wrap(self, argv: Sequence[str], readable: Sequence[str], writable: str) -> list[str]:
        """`argv` confined: `readable` paths read-only, `writable` (the output folder, also the working folder)
        writable. Mounted after /tmp, so that a node whose folders are under /tmp still shows them; then the
        sandbox's root and /dev become read-only (nothing a job writes outside its scratch space and output folder
        can stay for the next run of a session)."""
        args = list(self.prefix)
        for path in readable:
            args += ["--ro-bind", path, path]
        args += ["--bind", writable, writable, "--chdir", writable, "--remount-ro", "/", "--remount-ro", "/dev", "--"]
        args += argv
        return args


def system_python() -> str | None:
    """A Python of the system's folders, which every sandbox shows: the node's own interpreter when it is one, else
    python3 on the sandbox's PATH; None when neither lives there (a node run by a Python of a home folder on a
    machine without python3 in /usr)."""
    system = tuple(folder + "/" for folder in SYSTEM)
    for candidate in (sys.executable, shutil.which("python3", path=ENV["PATH"])):
        real = os.path.realpath(candidate) if candidate else ""
        if real.startswith(system):  # a venv's python is a link: its target is what the sandbox shows
            return real
    return None


def probe(work_dir: Path, program: str | None = None) -> Sandbox:
    """A Sandbox that was seen working on this machine: a confined shell reads one folder and writes in another.
    ConfinementError when bubblewrap is missing or fails (no user namespaces, a seccomp policy...)."""
    program = program or PROGRAM
    found = shutil.which(program)
    if found is None:
        raise ConfinementError(f"{program} is not installed (Debian: apt-get install bubblewrap)")
    sandbox = Sandbox(found)
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="confine-probe-", dir=work_dir) as folder:
        inputs, output = Path(folder) / "in", Path(folder) / "out"
        inputs.mkdir()
        output.mkdir()
        (inputs / "scene").write_text("readable\n")
        command = ["sh", "-c", 'cat "$0" > copy', str(inputs / "scene")]
        argv = sandbox.wrap(command, [str(inputs)], str(output))
        try:
            done = subprocess.run(argv, env={}, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfinementError(f"{found} could not be run: {exc}") from None
        copy = output / "copy"
        if done.returncode != 0 or not copy.is_file() or copy.read_text() != "readable\n":
            said = " ".join((done.stdout + done.stderr).split())[:300] or "nothing"
            raise ConfinementError(f"{found} does not work here (exit code {done.returncode}; it said: {said})")
        copy.unlink()
        sandbox.python = _try_launcher(sandbox, command, [str(inputs)], output)
    return sandbox


def _try_launcher(sandbox: Sandbox, argv: list[str], readable: list[str], output: Path) -> str | None:
    """The Python that runs command sessions, once the launcher ran `argv` in a sandbox with it (and exited when its
    stdin closed); None, and why in the log, when it cannot: command chunks then get a sandbox each."""
    python = system_python()
    if python is None:
        log.warning("command chunks run in a sandbox each (slower): no Python 3 in /usr for the launcher of command "
                    "sessions (Debian: apt-get install python3)")
        return None
    run = command_session.run_command(argv, output)
    try:
        done = subprocess.run(sandbox.wrap(command_session.session_argv(python), readable, str(output)), env={},
                              input=json.dumps(run) + "\n", capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        done, said = None, str(exc)
    else:
        said = " ".join((done.stdout + done.stderr).split())[:300] or "nothing"
        ended = [found for line in done.stdout.splitlines() if (found := command_session.verdict(line, run["marker"]))]
        try:
            if done.returncode == 0 and ended and command_session.ran(ended[0][2]).code == 0 and \
                    (output / "copy").is_file():
                return python
        except ValueError:
            pass
    log.warning("command chunks run in a sandbox each (slower): the launcher of command sessions did not work with "
                "%s (%s)", python, said if done is None else f"exit code {done.returncode}; it said: {said}")
    return None


@dataclass(frozen=True)
class Policy:
    """How this node runs each software: in `sandbox`, or unconfined (`sandbox` None: bubblewrap does not work
    here; or command tasks with `unconfined_commands`, the operator's explicit choice)."""

    sandbox: Sandbox | None
    unconfined_commands: bool = False

    def offers(self, software: str) -> bool:
        """Command tasks only when they can be confined, or the operator allowed them unconfined."""
        return software != COMMAND or self.sandbox is not None or self.unconfined_commands

    def sandbox_for(self, software: str) -> Sandbox | None:
        if software == COMMAND and self.unconfined_commands:
            return None
        return self.sandbox


def node_policy(work_dir: Path, unconfined_commands: bool, program: str | None = None) -> Policy:
    """Probe bubblewrap once, at the node's start, and say what that means for the operator."""
    try:
        sandbox: Sandbox | None = probe(work_dir, program)
    except ConfinementError as exc:
        sandbox = None
        log.warning("render jobs cannot be confined on this node: %s. Blender renders run unconfined, as this "
                    "node's user.", exc)
        if not unconfined_commands:
            log.warning("this node does not offer command tasks: they would run unconfined. Install bubblewrap, "
                        "or pass --unconfined-commands to run them unconfined anyway.")
    else:
        log.info("render jobs run confined (%s)", sandbox.program)
    if unconfined_commands:
        log.warning("--unconfined-commands: command tasks run unconfined, as this node's user; they can read "
                    "whatever it can (on the server's machine the farm's secret key and database too).")
    return Policy(sandbox, unconfined_commands)
