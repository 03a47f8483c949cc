import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.farms import farm_at

ROOT = Path(__file__).resolve().parent.parent
RAYVISION_VENV = Path(os.environ.get("RAYFARM_RAYVISION_VENV", ROOT / ".venv-rayvision"))
RAYVISION_SYNC_VENV = Path(os.environ.get("RAYFARM_RAYVISION_SYNC_VENV", ROOT / ".venv-rayvision-sync"))
#: The official client packages as customers install them (they install together: all pin requests 2.23.0,
#: tenacity 7.0.0, future 0.18.2).
OFFICIAL_CLIENT = ["setuptools<81", "rayvision-api==3.0.4.3", "rayvision-sync==3.1.8", "rayvision-utils==1.2.2.4",
                   "rayvision-blender==2.0.4"]


@pytest.fixture
def farm(tmp_path):
    """A real `rayfarm server` process on a free loopback port, with its own data dir."""
    yield from farm_at(tmp_path / "farm")


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


def _rayvision_sync_python() -> Path:
    """The official SDK with its transfer and Blender packages, in a venv of their own (created on first use).

    rayfarm's drop-in ``rayfarm.compat.rayvision_sync`` is not installed there: run it with
    ``PYTHONPATH`` = the repository (it imports only the standard library and ``requests``).
    """
    python = RAYVISION_SYNC_VENV / "bin" / "python"
    probe = [str(python), "-W", "ignore", "-c",
             "import rayvision_api, rayvision_sync.upload, rayvision_sync.download, rayvision_utils, rayvision_blender"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(RAYVISION_SYNC_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *OFFICIAL_CLIENT], check=True)
    subprocess.run(probe, check=True)
    return python


@pytest.fixture(scope="session")
def rayvision_sync_python() -> Path:
    return _rayvision_sync_python()
