import pytest

from tests.support.farms import close_all, make_farm, make_user


@pytest.fixture(autouse=True)
def _close_farms():
    yield
    close_all()


@pytest.fixture
def farm(tmp_path):
    """An in-process farm of the test's own (no HTTP, no server process), disposed of after the test."""
    return make_farm(tmp_path)


@pytest.fixture
def user(farm):
    """A user ("alice") of the test's farm."""
    return make_user(farm)
