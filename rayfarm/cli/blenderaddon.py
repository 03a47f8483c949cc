"""`rayfarm blender-addon install|zip`: the Blender add-on, a Submit panel in Blender's Output properties.

The add-on runs this installation's `rayfarm` command (recorded in its ``install.json``), so Blender's own
Python never needs rayfarm. `install` asks Blender where its user add-ons live (honouring
``BLENDER_USER_SCRIPTS`` and ``BLENDER_USER_CONFIG``), copies the add-on there, enables it and saves
Blender's user preferences; `zip` makes the file for Blender's Preferences > Add-ons > Install.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Annotated

import typer

from rayfarm.blender_addon import MODULE, SOURCE
from rayfarm.blender_addon.rayfarm_blender.command import INSTALL_FILE
from rayfarm.cli.blendscene import find_blender
from rayfarm.cli.session import Exit, err, fail

addon_app = typer.Typer(help="The Blender add-on: submit the open scene from Blender's Output properties.",
                        no_args_is_help=True)

MARK = "RAYFARM_ADDON "
WHERE = """
import bpy, json
print(MARK + json.dumps({"addons": bpy.utils.user_resource("SCRIPTS", path="addons", create=True),
                         "version": bpy.app.version_string}), flush=True)
"""
ENABLE = """
import bpy, json
bpy.ops.preferences.addon_enable(module=MODULE)
bpy.ops.wm.save_userpref()
print(MARK + json.dumps({"enabled": MODULE in bpy.context.preferences.addons,
                         "hasOperator": hasattr(bpy.ops.rayfarm, "submit"),
                         "userpref": bpy.utils.user_resource("CONFIG", path="userpref.blend")}), flush=True)
"""


def rayfarm_program() -> str | None:
    """This installation's `rayfarm`: next to the running Python (a venv's bin/ or Scripts/), else on the PATH."""
    folder = Path(sys.executable).parent
    for name in ("rayfarm", "rayfarm.exe"):
        if (folder / name).is_file():
            return str(folder / name)
    return shutil.which("rayfarm")


def addon_files() -> list[Path]:
    """The add-on's source files, relative to its folder."""
    return sorted(p.relative_to(SOURCE) for p in SOURCE.rglob("*.py") if "__pycache__" not in p.parts)


def _install_json(program: str | None) -> str:
    return json.dumps({"rayfarm": program or ""}, indent=2) + "\n"


def _run_blender(program: str, script: str, timeout: float = 180) -> dict:
    """Run ``script`` in background Blender with the user's own preferences; what it printed after MARK."""
    code = f"MARK = {MARK!r}\nMODULE = {MODULE!r}\n{script}"
    try:
        done = subprocess.run([program, "-b", "--python-exit-code", "1", "--python-expr", code], capture_output=True,
                              text=True, errors="replace", timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        fail(f"Blender ({program}) did not answer within {timeout:.0f} s.", Exit.ERROR)
    except OSError as exc:
        fail(f"Cannot run Blender ({program}): {exc.strerror or exc}.", Exit.ERROR)
    lines = [line[len(MARK):] for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
        fail(f"Blender ({program}) failed (exit {done.returncode}):\n{tail}", Exit.ERROR)
    return json.loads(lines[-1])


@addon_app.command()
def install(blender: Annotated[str | None, typer.Option(help="The Blender to install it in (default: "
                                                             "$RAYFARM_BLENDER, else `blender` on the PATH).")] = None) -> None:
    """Install the add-on for this Blender's user, enable it and save Blender's preferences.

    Quit Blender first: a running Blender may save its own preferences over these when it quits.
    """
    program = find_blender(blender)
    if program is None:
        fail(f"Blender ({blender or 'blender'}) is not installed here; point --blender (or $RAYFARM_BLENDER) at it.",
             Exit.USAGE)
    where = _run_blender(program, WHERE)
    target = Path(where["addons"]) / MODULE
    rayfarm = rayfarm_program()
    try:
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (target / INSTALL_FILE).write_text(_install_json(rayfarm), encoding="utf-8")
    except OSError as exc:
        fail(f"Cannot copy the add-on into {target}: {exc.strerror or exc}.", Exit.ERROR)
    enabled = _run_blender(program, ENABLE)
    if not (enabled["enabled"] and enabled["hasOperator"]):
        fail(f"Blender did not enable the add-on copied into {target}.", Exit.ERROR)
    print(f"Installed the rayfarm add-on in {target} and enabled it for Blender {where['version']} "
          f"(preferences saved in {enabled['userpref']}).")
    print("In Blender: Properties > Output > rayfarm.")
    if rayfarm:
        print(f"It runs {rayfarm}.")
    else:
        err.print("No `rayfarm` program was found next to this Python or on the PATH: set it in Blender's "
                  "Preferences > Add-ons > rayfarm, or set RAYFARM_EXE.", style="yellow", markup=False)


@addon_app.command("zip")
def make_zip(out: Annotated[Path, typer.Argument(help="The .zip to write.")]) -> None:
    """Write the add-on as a .zip for Blender's Preferences > Add-ons > Install."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in addon_files():
                archive.write(SOURCE / name, f"{MODULE}/{name.as_posix()}")
            archive.writestr(f"{MODULE}/{INSTALL_FILE}", _install_json(rayfarm_program()))
    except OSError as exc:
        fail(f"Cannot write {out}: {exc.strerror or exc}.", Exit.ERROR)
    print(f"Wrote {out}: in Blender, Edit > Preferences > Add-ons > Install..., pick it, tick \"Render: rayfarm\".")
