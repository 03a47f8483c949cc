"""The generic renderer: any program, from the task's argument list with placeholders."""

from pathlib import Path
from typing import Any, ClassVar

from rayfarm.worker.renderers.base import Chunk, Renderer, RenderError

PLACEHOLDERS = ("{start}", "{end}", "{step}", "{frame}", "{scene}", "{output}")


def expand(args: list[str], values: dict[str, str]) -> list[str]:
    """Replace each `{name}` placeholder with str.replace (other braces stay as they are)."""
    expanded = []
    for arg in args:
        for name, value in values.items():
            arg = arg.replace("{" + name + "}", value)
        expanded.append(arg)
    return expanded


class CommandRenderer(Renderer):
    """`render["command"]`: one run per frame when an argument has `{frame}`, else one run per chunk."""

    software: ClassVar[str] = "command"
    needs_output: ClassVar[bool] = False

    def commands(self, lease: dict[str, Any], scene_path: str | Path | None, output_dir: Path) -> list[list[str]]:
        command = self.render.get("command")
        if not isinstance(command, list) or not command or not all(isinstance(arg, str) for arg in command):
            raise RenderError("the task's command must be a non-empty list of strings (program and arguments).")
        if any("{scene}" in arg for arg in command) and not scene_path:
            raise RenderError("the command uses {scene} but the task has no scene file.")
        chunk = Chunk.of(lease)
        values = {"start": str(chunk.start), "end": str(chunk.end), "step": str(chunk.step),
                  "scene": str(scene_path or ""), "output": str(output_dir)}
        if not any("{frame}" in arg for arg in command):
            return [expand(command, values)]
        return [expand(command, {**values, "frame": str(frame)}) for frame in chunk.frames]
