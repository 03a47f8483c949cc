import pytest

from tests.farmproc import FarmServer, free_port


@pytest.fixture
def start_farm(tmp_path):
    """Start a real `rayfarm server` (own data dir, free port, fresh database); all are stopped at the end."""
    started: list[FarmServer] = []

    def start(**env: str) -> FarmServer:
        data = tmp_path / f"farm{len(started)}"
        data.mkdir()
        server = FarmServer(data, free_port(), env=dict(env))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
