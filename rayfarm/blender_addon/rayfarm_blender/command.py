"""The `rayfarm` command line as the add-on runs it: found, given the panel's settings, followed in a thread.

Plain Python 3.10 without bpy: Blender's main thread starts a :class:`Submission` and polls it; a
background thread reads the child's progress lines (stderr) and, at the end, its JSON answer (stdout).
"""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

INSTALL_FILE = "install.json"  # {"rayfarm": PATH}, written by `rayfarm blender-addon install` and `zip`
# Lines `rayfarm submit` prints on the way when its stderr is not a terminal (see rayfarm/cli/submit.py).
PROGRESS = ("Reading ", "Uploading ", "Creating the task", "Submitted task ")
EXITS = {1: "it failed on this machine", 2: "check the settings and the farm profile",
         3: "the farm refused it", 4: "the farm could not be reached"}


class SetupError(Exception):
    """The rayfarm command line cannot be run; the message says what to do."""


def _program(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def installed_from(folder: str | None = None) -> str:
    """The `rayfarm` program recorded when this add-on was installed ("" when none was)."""
    path = os.path.join(folder or os.path.dirname(os.path.abspath(__file__)), INSTALL_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            return str(json.load(handle).get("rayfarm") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def find_rayfarm(preference: str = "", folder: str | None = None) -> str:
    """The rayfarm program: the add-on's preference, else $RAYFARM_EXE, else `rayfarm` on the PATH,
    else the one whose `rayfarm blender-addon` installed this add-on."""
    if preference:
        if not _program(preference):
            raise SetupError(f"The rayfarm program set in the add-on's preferences ({preference}) is not a program; "
                             f"fix it in Edit > Preferences > Add-ons > rayfarm, or clear it.")
        return preference
    given = os.environ.get("RAYFARM_EXE", "")
    if given:
        if not _program(given):
            raise SetupError(f"RAYFARM_EXE names {given}, which is not a program; fix or unset it.")
        return given
    found = shutil.which("rayfarm") or installed_from(folder)
    if found and _program(found):
        return found
    raise SetupError("The rayfarm command line was not found. Install rayfarm (in its own venv) and run "
                     "`rayfarm blender-addon install` with it, or set the rayfarm program in "
                     "Edit > Preferences > Add-ons > rayfarm.")


@dataclass
class Settings:
    """The panel's settings, as `rayfarm submit` takes them."""

    frames: str
    chunk: int = 1
    priority: int = 50
    priority_frames: str = ""
    pause_after_priority: bool = False
    limit: int = 0
    camera: str = ""
    labels: str = ""  # comma-separated
    project: str = ""
    profile: str = ""  # "": the add-on's server and keys if set, else the command line's default profile


def labels_of(text: str) -> list[str]:
    return [label.strip() for label in text.split(",") if label.strip()]


def submit_argv(rayfarm: str, blend: str, settings: Settings, blender: str = "") -> list[str]:
    """`rayfarm submit BLEND --json ...` for these settings (Blender reads the scene's files for it)."""
    argv = [rayfarm, "submit", blend, "--json", "--frames", settings.frames, "--chunk", str(settings.chunk),
            "--level", str(settings.priority), "--limit", str(settings.limit)]
    if settings.priority_frames.strip():
        argv += ["--priority-frames", settings.priority_frames.strip()]
    if settings.pause_after_priority:
        argv.append("--pause-after-priority")
    if settings.camera:
        argv += ["--camera", settings.camera]
    for label in labels_of(settings.labels):
        argv += ["--label", label]
    if settings.project.strip():
        argv += ["--project", settings.project.strip()]
    if settings.profile.strip():
        argv += ["--profile", settings.profile.strip()]
    if blender:
        argv += ["--blender", blender]
    return argv


def credentials_env(server: str = "", access_id: str = "", access_key: str = "") -> dict[str, str]:
    """The add-on's own farm settings as the environment the command line reads (a named profile wins)."""
    values = {"RAYFARM_SERVER": server, "RAYFARM_ACCESS_ID": access_id, "RAYFARM_ACCESS_KEY": access_key}
    return {name: value.strip() for name, value in values.items() if value.strip()}


def _environment(extra: dict[str, str] | None) -> dict[str, str]:
    env = {**os.environ, **(extra or {}), "COLUMNS": "1000"}  # one message, one line
    env.pop("FORCE_COLOR", None)
    return env


def failure(code: int, lines: list[str]) -> str:
    """What went wrong, in the command line's own words (its lines after the last progress line)."""
    last = max((n for n, line in enumerate(lines) if line.startswith(PROGRESS)), default=-1)
    message = lines[last + 1:][:12]
    if message:
        return "\n".join(message)
    return f"rayfarm submit stopped with exit code {code}: {EXITS.get(code, 'see the system console')}."


class Submission:
    """`rayfarm submit ... --json` in a child process; ``status`` is its latest line, then ``result`` or ``error``."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.env = env
        self.status = "Starting rayfarm..."
        self.lines: list[str] = []
        self.result: dict | None = None
        self.error: str | None = None
        self._process: subprocess.Popen | None = None
        self._cancelled = False
        self._done = threading.Event()

    def start(self, echo=None) -> "Submission":
        """Start the child and the thread that reads it; ``echo`` gets each progress line too (from that thread)."""
        try:
            self._process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True, errors="replace",
                                             env=_environment(self.env), start_new_session=True)
        except OSError as exc:
            self.error = f"Cannot run {self.argv[0]}: {exc.strerror or exc}."
            self._done.set()
            return self
        threading.Thread(target=self._follow, args=(echo,), name="rayfarm-submit", daemon=True).start()
        return self

    def _follow(self, echo) -> None:
        process = self._process
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(process.stdout.read()), daemon=True)
        reader.start()
        for line in process.stderr:
            line = line.rstrip()
            if line:
                self.lines.append(line)
                self.status = line
                if echo:
                    echo(line)
        reader.join()
        code = process.wait()
        if self._cancelled:
            self.error = "Cancelled: the submission was stopped."
        elif code != 0:
            self.error = failure(code, self.lines)
        else:
            try:
                self.result = json.loads("".join(out))
                int(self.result["taskId"])
            except (ValueError, KeyError, TypeError):
                self.result = None
                self.error = f"rayfarm submit printed no task id: {''.join(out)[:300]!r}"
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def cancel(self) -> None:
        """Stop the child and what it started (the Blender reading the scene) at once."""
        if self._process is None or self.done:
            return
        self._cancelled = True
        try:
            if hasattr(os, "killpg"):
                os.killpg(self._process.pid, signal.SIGTERM)
            else:
                self._process.terminate()
        except ProcessLookupError:
            pass


class Profiles:
    """The command line's profile names (`rayfarm profile list --json`), read in a thread and kept."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.default = ""
        self.read_at: float | None = None  # time.monotonic() of the last read
        self._thread: threading.Thread | None = None

    def refresh(self, rayfarm: str, max_age: float = 10.0) -> None:
        """Read them again in the background unless that is under way or was done less than ``max_age`` s ago."""
        if self._thread and self._thread.is_alive():
            return
        if self.read_at is not None and time.monotonic() - self.read_at < max_age:
            return
        self._thread = threading.Thread(target=self._load, args=(rayfarm,), name="rayfarm-profiles", daemon=True)
        self._thread.start()

    def _load(self, rayfarm: str) -> None:
        try:
            done = subprocess.run([rayfarm, "profile", "list", "--json"], capture_output=True, text=True,
                                  timeout=60, stdin=subprocess.DEVNULL, env=_environment(None))
            rows = json.loads(done.stdout) if done.returncode == 0 else []
        except (OSError, subprocess.SubprocessError, ValueError):
            rows = []
        self.names = [row["name"] for row in rows if isinstance(row, dict) and row.get("name")]
        self.default = next((row["name"] for row in rows if isinstance(row, dict) and row.get("default")), "")
        self.read_at = time.monotonic()
