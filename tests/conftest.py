import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import FarmServer, free_port
from tests.support.snapshots import forget

ROOT = Path(__file__).resolve().parent.parent
RAYVISION_VENV = Path(os.environ.get("RAYFARM_RAYVISION_VENV", ROOT / ".venv-rayvision"))


@pytest.fixture
def farm(tmp_path):
    """A real `rayfarm server` process on a free loopback port, with its own data dir."""
    server = FarmServer(tmp_path / "farm", free_port())
    server.start()
    yield server
    server.stop()
    forget(server)


def _rayvision_python() -> Path:
    """The official SDK (rayvision_api==3.0.4.3) lives in its own venv: it pins old libraries."""
    python = RAYVISION_VENV / "bin" / "python"
    probe = [str(python), "-c", "import rayvision_api"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(RAYVISION_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "setuptools<81", "rayvision-api==3.0.4.3"], check=True)
    subprocess.run(probe, check=True)
    return python


@pytest.fixture(scope="session")
def rayvision_python() -> Path:
    return _rayvision_python()
