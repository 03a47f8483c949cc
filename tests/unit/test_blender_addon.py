"""The Blender add-on's command side (plain Python, no bpy): which rayfarm it runs, the command line it
gives `rayfarm submit` (parsed here by the real command line), and a submission followed in a thread."""

import json
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from rayfarm.blender_addon.rayfarm_blender import command
from rayfarm.cli.main import app
from tests.support.processes import wait_for


def program(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def test_the_rayfarm_it_runs_preferences_then_environment_then_path_then_the_installer(tmp_path, monkeypatch):
    chosen, named, on_path, installer = (program(tmp_path / d / "rayfarm") for d in ("chosen", "env", "path", "venv"))
    addon = tmp_path / "addon"
    addon.mkdir()
    (addon / command.INSTALL_FILE).write_text(json.dumps({"rayfarm": installer}))
    monkeypatch.setenv("RAYFARM_EXE", named)
    monkeypatch.setenv("PATH", str(Path(on_path).parent))
    assert command.find_rayfarm(chosen, addon) == chosen
    assert command.find_rayfarm("", addon) == named
    monkeypatch.delenv("RAYFARM_EXE")
    assert command.find_rayfarm("", addon) == on_path
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert command.find_rayfarm("", addon) == installer

    (addon / command.INSTALL_FILE).unlink()
    with pytest.raises(command.SetupError, match="rayfarm blender-addon install"):
        command.find_rayfarm("", addon)
    with pytest.raises(command.SetupError, match="preferences"):
        command.find_rayfarm(str(tmp_path / "nothing"), addon)
    monkeypatch.setenv("RAYFARM_EXE", str(tmp_path / "nothing"))
    with pytest.raises(command.SetupError, match="RAYFARM_EXE"):
        command.find_rayfarm("", addon)


def test_the_panel_settings_mean_the_same_to_rayfarm_submit():
    settings = command.Settings(frames="1-100[2]", chunk=5, priority=80, priority_frames="100",
                                pause_after_priority=True, limit=3, camera="Close Up", labels="hero, , shot 12",
                                project="Shorts", profile="studio")
    argv = command.submit_argv("/venv/bin/rayfarm", "/proj/shot.blend", settings, blender="/opt/blender/blender")
    assert argv[:2] == ["/venv/bin/rayfarm", "submit"]
    submit = get_command(app).commands["submit"]
    params = submit.make_context("submit", argv[2:]).params
    assert {key: params[key] for key in ("scene", "frames", "chunk", "level", "priority_frames", "pause_after_priority",
                                         "limit", "camera", "label", "project", "profile", "blender", "json_out")} == {
        "scene": Path("/proj/shot.blend"), "frames": "1-100[2]", "chunk": 5, "level": 80, "priority_frames": "100",
        "pause_after_priority": True, "limit": 3, "camera": "Close Up", "label": ["hero", "shot 12"],
        "project": "Shorts", "profile": "studio", "blender": "/opt/blender/blender", "json_out": True}

    plain = command.submit_argv("rayfarm", "/proj/shot.blend", command.Settings(frames="1-2[1]"))
    params = submit.make_context("submit", plain[2:]).params
    assert (params["priority_frames"], params["pause_after_priority"], params["camera"], params["label"],
            params["project"], params["profile"], params["blender"]) == (None, False, None, (), None, None, None)
    assert command.credentials_env(" http://farm:8765 ", "", "") == {"RAYFARM_SERVER": "http://farm:8765"}


def test_a_failed_submission_says_what_the_command_line_said(tmp_path):
    missing = tmp_path / "missing.blend"
    job = command.Submission([sys.executable, "-m", "rayfarm", "submit", str(missing), "--json"]).start()
    assert job.wait(120)
    assert job.result is None
    assert job.error == f"{missing} is not a file; give the path of the .blend to render."


def test_a_cancelled_submission_stops_its_process():
    job = command.Submission([sys.executable, "-c", "import sys, time; print('Reading a.blend', file=sys.stderr, "
                                                    "flush=True); time.sleep(600)"]).start()
    wait_for(lambda: job.lines or job.done, 60, "the child's first line")
    assert job.status == "Reading a.blend"
    job.cancel()
    assert job.wait(30)
    assert job.error == "Cancelled: the submission was stopped." and job.result is None


def test_the_error_shown_is_what_came_after_the_progress_lines():
    lines = ["Reading shot.blend with Blender...", "Uploading shot.blend (1/2): 0% of 1.2 MB",
             "Uploading shot.blend (1/2): 100% of 1.2 MB", "The farm refused: error 600: The disk is full.",
             "(details)"]
    assert command.failure(3, lines) == "The farm refused: error 600: The disk is full.\n(details)"
    assert command.failure(4, []) == "rayfarm submit stopped with exit code 4: the farm could not be reached."
