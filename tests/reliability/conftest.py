import pytest

from tests.support.processes import FarmServer, free_port


@pytest.fixture
def start_farm(tmp_path):
    """Start a real `rayfarm server` (own data dir, free port, fresh database); all are stopped at the end."""
    started: list[FarmServer] = []

    def start(**env: str) -> FarmServer:
        server = FarmServer(tmp_path / f"farm{len(started)}", free_port(), env=dict(env))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
