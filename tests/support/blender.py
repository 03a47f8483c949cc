"""Tiny Blender scenes for the tests and the benchmarks (Cycles CPU, no denoiser): built by Blender itself."""

import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

# What both scenes end with: frames 1..{frames}, Cycles on the CPU without a denoiser, PNG, saved at {path}.
RENDER_AND_SAVE = """
scene.frame_start = 1
scene.frame_end = {frames}
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = {samples}
scene.cycles.use_adaptive_sampling = False
scene.cycles.use_denoising = False
scene.cycles.use_preview_denoising = False
scene.render.resolution_x = {width}
scene.render.resolution_y = {height}
scene.render.resolution_percentage = 100
scene.render.image_settings.file_format = "PNG"
bpy.ops.wm.save_as_mainfile(filepath={path!r}, relative_remap=False)
"""

SCRIPT = """
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
bpy.ops.mesh.primitive_cube_add(size=2, location=(0, 0, 0))
bpy.ops.object.camera_add(location=(6, -6, 4.5), rotation=(1.1, 0, 0.785))
camera = bpy.context.active_object
camera.name = {camera!r}
scene.camera = camera
bpy.ops.object.camera_add(location=(0, -8, 0), rotation=(1.5708, 0, 0))
bpy.context.active_object.name = "SideCamera"
bpy.ops.object.light_add(type="SUN", location=(4, -4, 8))
bpy.context.active_object.data.energy = 3.0
cube = bpy.data.objects["Cube"]
cube.rotation_euler = (0, 0, 0)
cube.keyframe_insert("rotation_euler", frame=1)
cube.rotation_euler = (0, 0, 1.5)
cube.keyframe_insert("rotation_euler", frame={frames})
for name in ([] if {stamps} else [p.identifier for p in scene.render.bl_rna.properties]):
    if name.startswith("use_stamp"):
        setattr(scene.render, name, False)  # no metadata stamps (date, render time...)
""" + RENDER_AND_SAVE


def make_scene(path: str | Path, frames: int = 6, width: int = 160, height: int = 90, samples: int = 8,
               camera: str = "Camera", blender: str = "blender", timeout: float = 120, stamps: bool = True) -> Path:
    """Write a .blend at `path` with frames 1..`frames`, cameras `camera` and "SideCamera"; returns the path.
    `stamps` False: Blender's metadata stamps (date, time, render time, ...) are off."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    _build(SCRIPT.format(camera=camera, frames=frames, samples=samples, width=width, height=height, path=str(path),
                         stamps=stamps), path, blender, timeout)
    return path


def _build(script: str, path: Path, blender: str, timeout: float) -> None:
    """Run ``script`` in Blender, which saves the scene at ``path``."""
    result = subprocess.run([blender, "-b", "--factory-startup", "--python-expr", script],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"blender could not build the test scene {path.name} (exit {result.returncode}): "
                           f"{(result.stdout + result.stderr)[-2000:]}")


TEXTURED = """
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
bpy.ops.mesh.primitive_plane_add(size=8, location=(0, 0, 0))
plane = bpy.context.active_object
material = bpy.data.materials.new("Textured")
material.use_nodes = True
nodes = material.node_tree.nodes
texture = nodes.new("ShaderNodeTexImage")
image = bpy.data.images.load({texture!r})
image.filepath = {relative!r}
texture.image = image
emission = nodes.new("ShaderNodeEmission")
output = nodes["Material Output"]
material.node_tree.links.new(texture.outputs["Color"], emission.inputs["Color"])
material.node_tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
plane.data.materials.append(material)
bpy.ops.object.camera_add(location=(0, 0, 5), rotation=(0, 0, 0))
scene.camera = bpy.context.active_object
""" + RENDER_AND_SAVE


def make_textured_scene(path: str | Path, color: tuple[int, int, int] = (0, 200, 0), frames: int = 1,
                        width: int = 64, height: int = 64, samples: int = 4, blender: str = "blender",
                        timeout: float = 120) -> tuple[Path, Path]:
    """A .blend whose plane fills the view and shows `tex/flat.png` (next to it, referenced as //tex/flat.png)
    unlit; returns both paths. The texture is a separate file: a farm must be given it (upload.json), or find it."""
    from PIL import Image

    path = Path(path).resolve()
    texture = path.parent / "tex" / "flat.png"
    texture.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), color).save(texture)
    _build(TEXTURED.format(texture=str(texture), relative="//tex/flat.png", path=str(path), frames=frames,
                           width=width, height=height, samples=samples), path, blender, timeout)
    return path, texture



EMITTING = """
def emitting(name, size, location, texture, path):
    bpy.ops.mesh.primitive_plane_add(size=size, location=location)
    plane = bpy.context.active_object
    plane.name = name
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes = material.node_tree.nodes
    image = nodes.new("ShaderNodeTexImage")
    image.image = bpy.data.images.load(texture)
    image.image.filepath = path
    emission = nodes.new("ShaderNodeEmission")
    material.node_tree.links.new(image.outputs["Color"], emission.inputs["Color"])
    material.node_tree.links.new(emission.outputs["Emission"], nodes["Material Output"].inputs["Surface"])
    plane.data.materials.append(material)
    return plane
"""

LIBRARY = """
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
""" + EMITTING + """
collection = bpy.data.collections.new("Props")
bpy.context.scene.collection.children.link(collection)
for plane in (emitting("Prop", 0.6, (0, 0, 0.5), {red!r}, "//" + {red_name!r}),
              emitting("Prop2", 0.6, (1.2, 0, 0.5), {yellow!r}, {yellow!r})):
    bpy.context.scene.collection.objects.unlink(plane)
    collection.objects.link(plane)
bpy.ops.wm.save_as_mainfile(filepath={path!r}, relative_remap=False)
"""

LINKED = """
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
""" + EMITTING + """
scene = bpy.context.scene
bpy.ops.wm.save_as_mainfile(filepath={path!r}, relative_remap=False)  # so that "//" names its folder
emitting("Ground", 8, (0, 0, 0), {blue!r}, {blue!r})
emitting("Side", 0.6, (-1.2, 0, 0.3), {green!r}, "//tex/" + {green_name!r})
with bpy.data.libraries.load({library!r}, link=True, relative=False) as (source, linked):
    linked.collections = ["Props"]
instance = bpy.data.objects.new("Props", None)
instance.instance_type = "COLLECTION"
instance.instance_collection = linked.collections[0]
scene.collection.objects.link(instance)
bpy.ops.object.camera_add(location=(0, 0, 5), rotation=(0, 0, 0))
scene.camera = bpy.context.active_object
scene.frame_start, scene.frame_end = 1, 1
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 2
scene.cycles.use_denoising = False
scene.view_settings.view_transform = "Standard"
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 36, 100
scene.render.image_settings.file_format = "PNG"
bpy.ops.wm.save_as_mainfile(filepath={path!r}, relative_remap=False)
"""


@dataclass
class LinkedScene:
    """A shot whose files are named every way a node must resolve (seen from its camera at 64x36):

    the ground, filling the frame, shows `<root>/assets/ground.png` (blue) named by its absolute path; on its
    left a plane shows `//tex/side.png` (green); the middle and right objects are linked from the library
    `<root>/proj/lib/props.blend`, named by its absolute path, whose own textures are `//prop.png` (red,
    middle) and `<root>/assets/prop2.png` (yellow, right, absolute)."""

    shot: Path
    library: Path
    ground: Path
    side: Path
    prop: Path
    prop2: Path

    BLUE, GREEN, RED, YELLOW = (20, 40, 220), (30, 200, 40), (220, 30, 30), (230, 210, 20)
    PIXELS = {"ground": (32, 3), "side": (9, 18), "prop": (32, 18), "prop2": (55, 18)}  # (x, y) of each in the render


def _blender(script: str, blender: str, timeout: float, path: Path) -> None:
    result = subprocess.run([blender, "-b", "--factory-startup", "--python-exit-code", "1", "--python-expr", script],
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"blender could not build {path.name}: {(result.stdout + result.stderr)[-2000:]}")


def make_linked_scene(root: str | Path, blender: str = "blender", timeout: float = 60) -> LinkedScene:
    """Build :class:`LinkedScene` under ``root``."""
    from PIL import Image

    root = Path(root).resolve()
    scene = LinkedScene(shot=root / "proj" / "shot.blend", library=root / "proj" / "lib" / "props.blend",
                        ground=root / "assets" / "ground.png", side=root / "proj" / "tex" / "side.png",
                        prop=root / "proj" / "lib" / "prop.png", prop2=root / "assets" / "prop2.png")
    for path, colour in ((scene.ground, LinkedScene.BLUE), (scene.side, LinkedScene.GREEN),
                         (scene.prop, LinkedScene.RED), (scene.prop2, LinkedScene.YELLOW)):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), colour).save(path)
    _blender(LIBRARY.format(red=str(scene.prop), red_name=scene.prop.name, yellow=str(scene.prop2),
                            path=str(scene.library)), blender, timeout, scene.library)
    _blender(LINKED.format(blue=str(scene.ground), green=str(scene.side), green_name=scene.side.name,
                           library=str(scene.library), path=str(scene.shot)), blender, timeout, scene.shot)
    return scene


# Cycles writes its own timings into a PNG's metadata whatever the scene says (two one-shot runs differ there too)
TIMINGS = (b"cycles.ViewLayer.total_time", b"cycles.ViewLayer.render_time", b"cycles.ViewLayer.synchronization_time")


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's chunks (type, data) in order, without Cycles' timing text chunks: two renders of a frame are the
    same picture with the same metadata when these are equal."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    found, at = [], 8
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + size]
        if not (kind == b"tEXt" and body.split(b"\0")[0] in TIMINGS):
            found.append((kind, body))
        at += 12 + size
    return found
