"""The web dashboard served at ``/``: tasks, one task's frames, render nodes and farm totals."""

from rayfarm.web.routes import routes

__all__ = ["routes"]
