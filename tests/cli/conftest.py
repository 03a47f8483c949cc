"""One real farm for the CLI tests, started with `rayfarm up`, and a helper that runs `python -m rayfarm ...`."""

import json
import subprocess
from pathlib import Path

import pytest

from rayfarm.sdk import RayfarmAPI
from tests.support.blender import make_textured_scene
from tests.support.processes import PYTHON, UpFarm, wait_for


class CliFarm(UpFarm):
    """The `rayfarm up` farm, and the commands a user types against it (its `local` profile is in config)."""

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


@pytest.fixture(scope="package")
def farm(tmp_path_factory) -> CliFarm:
    farm = CliFarm(tmp_path_factory.mktemp("cli"))
    try:
        farm.start(workers=2)
        with RayfarmAPI(farm.creds["accessId"], farm.creds["accessKey"], domain=f"127.0.0.1:{farm.port}") as api:
            wait_for(lambda: len(api.query.workers()) == 2, 60, "both render nodes to register", interval=0.2,
                     details=farm.logs)
        yield farm
    finally:
        farm.stop()


@pytest.fixture(scope="package")
def bob(farm) -> dict:
    """A second user, not an administrator (`rayfarm user create` on the farm's database)."""
    return json.loads(farm.ok("user", "create", "bob", "--data-dir", farm.data_dir, "--json").stdout)


@pytest.fixture(scope="package")
def scene(tmp_path_factory) -> Path:
    """A real Blender scene, tiny (frames 1-2, 64x36, 2 samples), whose plane shows `tex/flat.png` unlit (green).

    The texture is a separate file next to it: `rayfarm submit` must find it with Blender and upload it.
    """
    path, _ = make_textured_scene(tmp_path_factory.mktemp("scene") / "shot.blend", frames=2, width=64, height=36,
                                  samples=2)
    return path
