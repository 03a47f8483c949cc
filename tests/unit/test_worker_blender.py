import shutil
import subprocess
from pathlib import Path

import pytest

from rayfarm.worker.renderers import RenderError, chunk_progress, renderer_for
from rayfarm.worker.renderers.blender import BlenderRenderer, blender_format, settings_script


def lease(start=3, end=7, step=2, **render):
    base = {"software": "blender", "scene": "/D/proj/shot_010.blend", "camera": None, "width": None,
            "height": None, "format": None, "command": None, "cg_version": "3.4"}
    return {"leaseId": "L1", "start": start, "end": end, "step": step, "render": {**base, **render}}


def command_for(item, scene="/cache/abc/shot_010.blend", out=Path("/work/out")):
    renderer = renderer_for(item["render"])
    assert isinstance(renderer, BlenderRenderer)
    commands = renderer.commands(item, scene, out)
    assert len(commands) == 1
    return renderer, commands[0]


def test_command_line_order_and_frames():
    _, argv = command_for(lease(format="PNG", camera="Cam.001", width=1920, height=1080, output_name="beauty_###"))
    assert argv[:5] == ["blender", "-b", "--factory-startup", "--disable-autoexec", "/cache/abc/shot_010.blend"]
    assert argv[argv.index("-o") + 1] == "/work/out/beauty_###"  # task.json's Output_path names the frames
    assert argv[argv.index("-F") + 1] == "PNG"
    assert argv[argv.index("-x") + 1] == "1"
    assert argv[argv.index("-s") + 1] == "3"
    assert argv[argv.index("-e") + 1] == "7"
    assert argv[argv.index("-j") + 1] == "2"
    assert argv[-1] == "-a"
    # options are processed left to right: everything is set before -a renders
    assert argv.index("-o") < argv.index("-F") < argv.index("-s") < argv.index("--python-expr") < argv.index("-a")
    assert argv.index("--python-exit-code") < argv.index("--python-expr")
    script = argv[argv.index("--python-expr") + 1]
    assert "bpy.data.objects.get('Cam.001')" in script
    assert "scene.camera = camera" in script
    assert "scene.render.resolution_x = 1920" in script
    assert "scene.render.resolution_y = 1080" in script
    assert "scene.render.resolution_percentage = 100" in script
    assert "render_file_name" not in script  # Output_path given: the scene's own name is not read
    compile(script, "<expr>", "exec")


def run_naming(script: str, scene_filepath: str) -> str:
    """What the naming part of a settings script sets the output path to, for a scene whose path is this."""
    from types import SimpleNamespace

    scene = SimpleNamespace(render=SimpleNamespace(filepath=scene_filepath))
    namespace = {"scene": scene}
    exec(script.split("scene = bpy.context.scene\n", 1)[1], namespace)
    return scene.render.filepath


def test_without_output_path_the_scene_names_its_frames_in_the_chunks_folder():
    _, argv = command_for(lease())
    assert "-o" not in argv and "-F" not in argv
    assert argv[-11:-2] == ["-s", "3", "-e", "7", "-j", "2", "--python-exit-code", "1", "--python-expr"]
    assert argv[-1] == "-a"
    script = argv[-2]
    compile(script, "<expr>", "exec")
    assert run_naming(script, "//renders/frame_") == "/work/out/frame_"  # Blender adds 0001.png
    assert run_naming(script, "C:\\shots\\beauty_###") == "/work/out/beauty_###"
    assert run_naming(script, "/tmp/") == "/work/out/shot_010_####"  # a folder only: named after the scene
    assert run_naming(script, "//renders/_v2 ébauche_") == "/work/out/v2 _bauche_"  # what the farm can store


def test_camera_name_is_quoted_safely():
    name = "it's \"odd\"\nname"
    script = settings_script(name, None, None)
    compile(script, "<expr>", "exec")  # a valid script whatever the name
    assert f"bpy.data.objects.get({name!r})" in script
    assert settings_script(None, None, None) is None
    assert "resolution_percentage = 100" in settings_script(None, 640, None)


@pytest.mark.parametrize(("name", "flag"), [("PNG", "PNG"), ("png", "PNG"), ("JPEG", "JPEG"), ("jpg", "JPEG"),
                                            ("OPEN_EXR", "OPEN_EXR"), ("exr", "OPEN_EXR"), ("TIFF", "TIFF"),
                                            ("BMP", "BMP"), ("TARGA", "TGA"), ("OPEN_EXR_MULTILAYER",
                                                                             "OPEN_EXR_MULTILAYER")])
def test_formats(name, flag):
    assert blender_format(name) == flag


@pytest.mark.parametrize("name", ["GIF", "FFMPEG", "nonsense"])
def test_unknown_or_movie_format_is_refused(name):
    with pytest.raises(RenderError, match=name):
        command_for(lease(format=name))


def test_scene_stem_comes_from_the_task_even_when_cached_under_another_name():
    _, argv = command_for(lease(scene="D:\\proj\\Shot 2.blend"), scene="/cache/ff/x.blend")
    assert run_naming(argv[argv.index("--python-expr") + 1], "/tmp/") == "/work/out/Shot 2_####"


def test_unknown_software_is_refused():
    with pytest.raises(RenderError, match="maya"):
        renderer_for({"software": "maya"})


FRAME_LINE = "Fra:{f} Mem:9.63M (Peak 10.21M) | Time:00:00.08 | Mem:0.98M, Peak:0.98M | Scene, ViewLayer | {what}"


def test_progress_from_samples_and_saved_lines():
    renderer, _ = command_for(lease(start=1, end=2, step=1))
    assert renderer.parse_progress("Blender 3.4.1") is None
    assert renderer.parse_progress(FRAME_LINE.format(f=1, what="Synchronizing object | Cube")) == 0
    assert renderer.parse_progress(FRAME_LINE.format(f=1, what="Sample 4/8")) == 25
    assert renderer.parse_progress(FRAME_LINE.format(f=1, what="Sample 8/8")) == 50
    assert renderer.parse_progress("Saved: '/work/out/shot_010_0001.png'") == 50
    assert renderer.parse_progress(" Time: 00:00.40 (Saving: 00:00.29)") is None
    assert renderer.parse_progress(FRAME_LINE.format(f=2, what="Sample 2/8")) == 62.5
    assert renderer.parse_progress("Saved: '/work/out/shot_010_0002.png'") == 100


def test_progress_from_tiles_and_eevee():
    renderer, _ = command_for(lease(start=1, end=1, step=1))
    assert renderer.parse_progress("Fra:1 Mem:1M | Time:00:01.00 | Rendered 3/4 Tiles") == 75
    renderer, _ = command_for(lease(start=1, end=1, step=1))
    assert renderer.parse_progress("Fra:1 Mem:1M | Time:00:01.00 | Rendering 16 / 64 samples") == 25
    renderer, _ = command_for(lease(start=1, end=1, step=1))
    assert renderer.parse_progress("Fra:1 Mem:1M | Sample 8/8, Tile 2/4") == 50


def test_chunk_progress():
    assert chunk_progress(0, 1, 50) == 50
    assert chunk_progress(1, 4, None) == 25
    assert chunk_progress(3, 4, 100) == 100
    assert chunk_progress(0, 0, None) == 100


needs_blender = pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not installed")


@pytest.fixture(scope="module")
def cube_scene(tmp_path_factory):
    from tests.support.blender import make_scene

    return make_scene(tmp_path_factory.mktemp("scene") / "cube.blend", frames=6)


@needs_blender
def test_real_blender_renders_two_frames_and_progress_reaches_100(tmp_path, cube_scene):
    scene = cube_scene
    out = tmp_path / "out"
    out.mkdir()
    item = lease(start=2, end=3, step=1, scene="/D/proj/cube.blend", format="PNG", camera="SideCamera",
                 width=96, height=54)
    renderer, argv = command_for(item, scene=scene, out=out)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["cube_0002.png", "cube_0003.png"]
    from PIL import Image

    with Image.open(out / "cube_0002.png") as image:
        assert image.size == (96, 54)
    values = [v for v in map(renderer.parse_progress, result.stdout.splitlines()) if v is not None]
    assert values == sorted(values)
    assert any(0 < v < 50 for v in values) and 50 in values and any(50 < v < 100 for v in values)
    assert values[-1] == 100


@needs_blender
@pytest.mark.parametrize(("own", "names"), [("//renders/frame_", ["frame_0002.png", "frame_0003.png"]),
                                            ("/somewhere/else/beauty_###.", ["beauty_002.png", "beauty_003.png"])])
def test_real_blender_keeps_the_scenes_own_frame_names(tmp_path, cube_scene, own, names):
    """A scene whose output path is its artist's (not Blender's default folder): the frames keep its names, and
    land in the chunk's output folder, not where the scene said."""
    scene = tmp_path / "named.blend"
    script = f"import bpy; bpy.context.scene.render.filepath = {own!r}; bpy.ops.wm.save_as_mainfile(filepath={str(scene)!r})"
    made = subprocess.run(["blender", "-b", "--factory-startup", str(cube_scene), "--python-expr", script],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0 and scene.exists(), made.stdout[-2000:] + made.stderr[-2000:]
    out = tmp_path / "out"
    out.mkdir()
    _, argv = command_for(lease(start=2, end=3, step=1, scene="/D/proj/named.blend", format="PNG", width=32, height=18),
                          scene=scene, out=out)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == names
    assert not (tmp_path / "renders").exists()


@needs_blender
def test_real_blender_missing_camera_fails_with_message(tmp_path, cube_scene):

    from rayfarm.worker.client import FarmClient
    from rayfarm.worker.confine import node_policy
    from rayfarm.worker.job import Job
    from rayfarm.worker.scenes import SceneCache

    item = {**lease(start=1, end=1, step=1, camera="NoSuchCam"), "scene": {"path": str(cube_scene)}}
    client = FarmClient("http://farm.invalid", "t")  # never called: the scenes are on this machine
    # confined as a node runs it (unconfined where bubblewrap does not work)
    job = Job(item, tmp_path / "work", SceneCache(tmp_path / "cache", client), node_policy(tmp_path / "work", False))
    outcome = job.render()
    assert outcome.result == "failed"
    assert "blender exited with code 1" in outcome.error
    assert "no camera object named 'NoSuchCam'" in outcome.error, outcome.error
    assert list(job.output_dir.iterdir()) == []


def test_detect_version(monkeypatch):
    if shutil.which("blender"):
        assert BlenderRenderer.detect_version().count(".") >= 1
    monkeypatch.setattr(BlenderRenderer, "executable", "no-such-blender-here")
    assert BlenderRenderer.detect_version() is None
