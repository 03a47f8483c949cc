"""Renderer plugins: pick one for a task's `render` dict with :func:`renderer_for`."""

from typing import Any

from rayfarm.worker.renderers.base import Chunk, Renderer, RenderError, chunk_progress
from rayfarm.worker.renderers.blender import BlenderRenderer
from rayfarm.worker.renderers.command import CommandRenderer

RENDERERS: dict[str, type[Renderer]] = {cls.software: cls for cls in (BlenderRenderer, CommandRenderer)}


def renderer_for(render: dict[str, Any]) -> Renderer:
    """A fresh renderer for one lease; RenderError when the software is not supported here."""
    software = str(render.get("software") or "").lower()
    cls = RENDERERS.get(software)
    if cls is None:
        raise RenderError(f"this node cannot render software {software or '(none)'!r}; "
                          f"it knows {', '.join(sorted(RENDERERS))}.")
    return cls(render)


def software_versions() -> dict[str, str]:
    """Installed renderers and their versions, for the register call."""
    found = {}
    for name, cls in RENDERERS.items():
        version = cls.detect_version()
        if version is not None:
            found[name] = version
    return found


__all__ = ["Chunk", "RENDERERS", "Renderer", "RenderError", "chunk_progress", "renderer_for", "software_versions"]
