import pytest

from tests.support.farms import close_all


@pytest.fixture(autouse=True)
def _close_farms():
    yield
    close_all()
