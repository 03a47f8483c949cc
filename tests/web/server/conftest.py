"""The dashboard's server side without a browser: one in-process farm (the real Starlette app on SQLite, or on
PostgreSQL with RAYFARM_TEST_DATABASE_URL) per test module, driven with Starlette's TestClient. (The browser
tests in tests/web use the root conftest's real-server `farm`.)"""

import warnings

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from rayfarm.app import make_app
from rayfarm.server import farm as farm_module
from tests.support.farms import close_all, make_farm

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2 for its TestClient; httpx works the same here
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setattr(farm_module, "USER_CACHE_SECONDS", 0.0)  # disable / rotate apply at once in these tests
    farm = make_farm(tmp_path_factory.mktemp("web"))
    yield farm
    close_all()
    patch.undo()


@pytest.fixture(scope="module")
def app(farm):
    return make_app(farm)


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client
