"""What `rayfarm submit` (and the Blender add-on through it) reads from a scene with the real Blender.

The files to upload: libraries and the files they use, image sequences and UDIM tiles, never packed
data; and a scene that names files by absolute paths is uploaded as a copy whose paths are relative,
because a node rebuilds the user's folders around the scene where only relative paths resolve.
"""

import json
import subprocess

from PIL import Image

from rayfarm.cli.blendscene import find_blender, read_scene
from tests.support.blender import make_linked_scene

MARK = "PATHS "


def blend_paths(path) -> list[str]:
    """The paths a .blend names itself, as written in it (Blender's own list)."""
    script = f"import bpy, json; print({MARK!r} + json.dumps(bpy.utils.blend_paths(local=True)))"
    done = subprocess.run(["blender", "-b", "--factory-startup", str(path), "--python-expr", script],
                          capture_output=True, text=True, timeout=60)
    [line] = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    return json.loads(line[len(MARK):])


def test_libraries_and_textures_are_found_and_copies_name_them_relatively(tmp_path):
    scene = make_linked_scene(tmp_path / "user")
    originals = scene.shot.read_bytes(), scene.library.read_bytes()
    assert sorted(blend_paths(scene.shot)) == sorted([str(scene.ground), str(scene.library), "//tex/side.png"])
    assert sorted(blend_paths(scene.library)) == sorted([str(scene.prop2), "//prop.png"])
    copies = tmp_path / "copies"
    copies.mkdir()

    info = read_scene(scene.shot, find_blender(None), copy_dir=copies)

    assert sorted(info.files) == sorted(map(str, [scene.ground, scene.side, scene.library, scene.prop, scene.prop2]))
    assert info.copies == {str(scene.shot): str(copies / "shot.blend"), str(scene.library): str(copies / "1" / "props.blend")}
    assert sorted(blend_paths(copies / "shot.blend")) == ["//../assets/ground.png", "//lib/props.blend", "//tex/side.png"]
    assert sorted(blend_paths(copies / "1" / "props.blend")) == ["//../../assets/prop2.png", "//prop.png"]
    assert (scene.shot.read_bytes(), scene.library.read_bytes()) == originals  # the user's files are left as they were
    assert read_scene(scene.shot, find_blender(None)).copies == {}  # no copies unless asked for


SEQUENCES = """
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
sequence = bpy.data.images.load({first!r})
sequence.source = "SEQUENCE"
tiles = bpy.data.images.load({tile!r})
tiles.source = "TILED"
packed = bpy.data.images.load({packed!r})
packed.pack()
for image in (sequence, tiles, packed):
    image.use_fake_user = True
bpy.ops.wm.save_as_mainfile(filepath={path!r})  # relative paths (Blender's default)
"""


def test_sequences_and_udim_tiles_are_all_their_files_and_packed_images_are_not_uploaded(tmp_path):
    frames = [tmp_path / "seq" / f"walk_{n:04d}.png" for n in (1, 2, 3)]
    tiles = [tmp_path / "udim" / f"skin.{n}.png" for n in (1001, 1002)]
    others = [tmp_path / "seq" / "walk_0001_mask.png", tmp_path / "udim" / "skin.png", tmp_path / "packed.png"]
    for path in [*frames, *tiles, *others]:
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (4, 4), (10, 20, 30)).save(path)
    path = tmp_path / "images.blend"
    script = SEQUENCES.format(first=str(frames[0]), tile=str(tiles[0]), packed=str(others[2]), path=str(path))
    done = subprocess.run(["blender", "-b", "--factory-startup", "--python-exit-code", "1", "--python-expr", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]

    info = read_scene(path, find_blender(None), copy_dir=tmp_path)

    assert sorted(info.files) == sorted(map(str, [*frames, *tiles]))
    assert info.copies == {}  # its paths are relative already: the scene itself is uploaded
