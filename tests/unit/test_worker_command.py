from pathlib import Path

import pytest

from rayfarm.worker.renderers import RenderError, renderer_for
from rayfarm.worker.renderers.command import CommandRenderer, expand


def lease(command, start=1, end=5, step=2):
    return {"leaseId": "L", "start": start, "end": end, "step": step,
            "render": {"software": "command", "command": command, "scene": "/D/p/s.pov"}}


def commands(command, **kw):
    item = lease(command, **kw)
    renderer = renderer_for(item["render"])
    assert isinstance(renderer, CommandRenderer)
    return renderer.commands(item, "/scenes/s.pov", Path("/out"))


def test_one_run_per_frame_when_frame_is_used():
    runs = commands(["povray", "+I{scene}", "+O{output}/f_{frame}.png", "+KFI{start}", "+KFF{end}"])
    assert runs == [["povray", "+I/scenes/s.pov", f"+O/out/f_{f}.png", "+KFI1", "+KFF5"] for f in (1, 3, 5)]


def test_one_run_per_chunk_without_frame():
    runs = commands(["render", "--from", "{start}", "--to", "{end}", "--by", "{step}", "-o", "{output}"])
    assert runs == [["render", "--from", "1", "--to", "5", "--by", "2", "-o", "/out"]]


def test_other_braces_are_left_alone():
    assert expand(["{x}", "{{frame}}", "{}", "a{frame}b{frame}", "{0}"], {"frame": "7"}) == \
        ["{x}", "{7}", "{}", "a7b7", "{0}"]


def test_shell_syntax_is_not_interpreted():
    runs = commands(["echo", "$(rm -rf /); `x` | y > z", "*"])
    assert runs == [["echo", "$(rm -rf /); `x` | y > z", "*"]]


def test_scene_placeholder_without_scene_is_refused():
    item = lease(["x", "{scene}"])
    with pytest.raises(RenderError, match="scene"):
        renderer_for(item["render"]).commands(item, None, Path("/out"))


@pytest.mark.parametrize("bad", [None, [], "povray +Ia", ["ok", 3]])
def test_bad_command_is_refused(bad):
    item = lease(bad)
    with pytest.raises(RenderError, match="command"):
        renderer_for(item["render"]).commands(item, None, Path("/out"))


def test_bad_chunk_is_refused():
    item = lease(["x"], start=5, end=1)
    with pytest.raises(RenderError, match="frame range"):
        renderer_for(item["render"]).commands(item, None, Path("/out"))


def test_no_progress_from_lines():
    assert CommandRenderer({"software": "command"}).parse_progress("50%") is None
