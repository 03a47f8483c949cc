"""The Blender add-on (``rayfarm_blender/``), installed into Blender by `rayfarm blender-addon`.

It runs inside Blender's own Python and never imports rayfarm: it runs the `rayfarm` command line of
the venv rayfarm is installed in (see ``rayfarm_blender/command.py``).
"""

from pathlib import Path

MODULE = "rayfarm_blender"
SOURCE = Path(__file__).resolve().parent / MODULE
