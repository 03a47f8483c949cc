"""One real farm for the CLI tests, started with `rayfarm up`, and a helper that runs `python -m rayfarm ...`."""

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from rayfarm.sdk import RayfarmAPI
from tests.dbs import fresh_database_url
from tests.farmproc import PYTHON, free_port, stop_process, wait_for

# The variables a user's shell may have that would change which farm and user the commands use.
CLIENT_VARS = ("RAYFARM_SERVER", "RAYFARM_ACCESS_ID", "RAYFARM_ACCESS_KEY", "RAYFARM_PROFILE", "RAYFARM_DATA_DIR")


@dataclass
class Farm:
    data_dir: Path
    port: int
    config_home: Path  # XDG_CONFIG_HOME of the commands: `rayfarm up` wrote the `local` profile there
    env: dict
    creds: dict

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def up_log(self) -> Path:
        """What `rayfarm up` printed (its stdout and stderr)."""
        return self.data_dir.parent / "up.log"

    def run(self, *args: str | Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """`python -m rayfarm ARGS` as a user would type it (stdin is not a terminal)."""
        try:
            done = subprocess.run([PYTHON, "-m", "rayfarm", *map(str, args)], capture_output=True, text=True,
                                  timeout=timeout, env={**self.env, **(env or {})}, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"rayfarm {' '.join(map(str, args))} did not end in {timeout} s:\n"
                                 f"{exc.stderr}\n{self.logs()}") from None
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def ok(self, *args: str | Path, **options) -> subprocess.CompletedProcess:
        done = self.run(*args, **options)
        assert done.returncode == 0, f"rayfarm {' '.join(map(str, args))} exited {done.returncode}:\n{done.stderr}"
        return done

    def json(self, *args: str | Path, **options):
        """Run a command with --json: stdout must be exactly one JSON document."""
        return json.loads(self.ok(*args, "--json", **options).stdout)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted((self.data_dir / "up-logs").glob("*.log")))


@pytest.fixture(scope="package")
def farm(tmp_path_factory) -> Farm:
    root = tmp_path_factory.mktemp("cli")
    data, port = root / "farm", free_port()
    env = {key: value for key, value in os.environ.items() if key not in CLIENT_VARS}
    env["XDG_CONFIG_HOME"] = str(root / "config")
    url = fresh_database_url()
    if url:
        env["RAYFARM_DATABASE_URL"] = url
    log_path = root / "up.log"
    with open(log_path, "ab") as log:
        up = subprocess.Popen([PYTHON, "-m", "rayfarm", "up", "--data-dir", str(data), "--port", str(port),
                               "--workers", "2"], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    farm = Farm(data, port, root / "config", env, {})
    try:
        wait_for(lambda: "rayfarm is up" in log_path.read_text(errors="replace"), 60, "rayfarm up to start",
                 details=lambda: log_path.read_text(errors="replace") + farm.logs())
        farm.creds = json.loads((data / "credentials.json").read_text())
        with RayfarmAPI(farm.creds["accessId"], farm.creds["accessKey"], domain=f"127.0.0.1:{port}") as api:
            wait_for(lambda: len(api.query.workers()) == 2, 30, "both render nodes to register", interval=0.2,
                     details=farm.logs)
        yield farm
    finally:
        stop_process(up, signal.SIGINT, timeout=30)


@pytest.fixture(scope="package")
def bob(farm) -> dict:
    """A second user, not an administrator (`rayfarm user create` on the farm's database)."""
    return json.loads(farm.ok("user", "create", "bob", "--data-dir", farm.data_dir, "--json").stdout)


SCENE = """
import bpy
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
bpy.ops.mesh.primitive_plane_add(size=8, location=(0, 0, 0))
material = bpy.data.materials.new("Textured")
material.use_nodes = True
nodes = material.node_tree.nodes
texture = nodes.new("ShaderNodeTexImage")
texture.image = bpy.data.images.load({texture!r})
texture.image.filepath = "//tex/flat.png"
emission = nodes.new("ShaderNodeEmission")
material.node_tree.links.new(texture.outputs["Color"], emission.inputs["Color"])
material.node_tree.links.new(emission.outputs["Emission"], nodes["Material Output"].inputs["Surface"])
bpy.context.active_object.data.materials.append(material)
bpy.ops.object.camera_add(location=(0, 0, 5), rotation=(0, 0, 0))
scene.camera = bpy.context.active_object
scene.frame_start, scene.frame_end = 1, 2
scene.render.engine = "CYCLES"
scene.cycles.samples = 2
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 36, 100
scene.render.image_settings.file_format = "PNG"
bpy.ops.wm.save_as_mainfile(filepath={path!r}, relative_remap=False)
"""


@pytest.fixture(scope="package")
def scene(tmp_path_factory) -> Path:
    """A real Blender scene, tiny (frames 1-2, 64x36, 2 samples), whose plane shows `tex/flat.png` unlit (green).

    The texture is a separate file next to it: `rayfarm submit` must find it with Blender and upload it.
    """
    from PIL import Image

    folder = tmp_path_factory.mktemp("scene")
    path, texture = folder / "shot.blend", folder / "tex" / "flat.png"
    texture.parent.mkdir()
    Image.new("RGB", (16, 16), (0, 200, 0)).save(texture)
    done = subprocess.run(["blender", "-b", "--factory-startup", "--python-expr",
                           SCENE.format(texture=str(texture), path=str(path))],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and path.exists(), (done.stdout + done.stderr)[-2000:]
    return path
