import pytest

from tests.security.support import start_farm


@pytest.fixture(scope="package")
def shared_farm(tmp_path_factory):
    """One farm (default settings, rate limit included) for the matrix, traversal and limit tests: each
    module makes users of its own."""
    yield from start_farm(tmp_path_factory, "security")
