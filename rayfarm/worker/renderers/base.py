"""What every renderer plugin provides: command lines for a chunk, progress from output lines."""

from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, ClassVar


class RenderError(Exception):
    """A chunk cannot be rendered as asked (bad format, bad command...); the message is shown to the user."""


@dataclass(frozen=True)
class Chunk:
    """The frames of one lease: start..end every step."""

    start: int
    end: int
    step: int = 1

    @classmethod
    def of(cls, lease: dict[str, Any]) -> "Chunk":
        start = int(lease["start"])
        end = int(lease.get("end", start))
        step = int(lease.get("step") or 1)
        if step < 1 or end < start:
            raise RenderError(f"the chunk {start}-{end} step {step} is not a valid frame range.")
        return cls(start, end, step)

    @property
    def frames(self) -> list[int]:
        return list(range(self.start, self.end + 1, self.step))


def scene_stem(render: dict[str, Any], scene_path: str | Path | None) -> str:
    """The scene's name without extension, from the task (not the cached file's name)."""
    name = str(render.get("scene") or "") or str(scene_path or "")
    path = PureWindowsPath(name) if "\\" in name else PurePosixPath(name)
    return path.stem or "render"


class Renderer:
    """One renderer. An instance serves one lease: `commands` first, then `parse_progress` per output line."""

    software: ClassVar[str] = ""  # the `render["software"]` value it handles, also its capability name
    needs_output: ClassVar[bool] = False  # a run that writes no file is a failure

    def __init__(self, render: dict[str, Any]) -> None:
        self.render = render

    @classmethod
    def detect_version(cls) -> str | None:
        """The installed version for capability reporting ("" if versionless), None when not installed."""
        return ""

    def commands(self, lease: dict[str, Any], scene_path: str | Path | None, output_dir: Path) -> list[list[str]]:
        """The argument lists to run one after the other for this lease (never through a shell)."""
        raise NotImplementedError

    def parse_progress(self, line: str) -> float | None:
        """Percent (0..100) of the current command's work after this output line, or None if it tells nothing."""
        return None


def chunk_progress(run_index: int, runs: int, run_percent: float | None) -> float:
    """Percent of the chunk: runs finished plus the fraction of the current run."""
    if runs <= 0:
        return 100.0
    fraction = min(max((run_percent or 0.0) / 100.0, 0.0), 1.0)
    return round(min(100.0, (run_index + fraction) * 100.0 / runs), 2)
