import hashlib

import pytest

from rayfarm.worker.client import FarmClient, FarmError
from rayfarm.worker.renderers import RenderError
from rayfarm.worker.scenes import SceneCache
from tests.support.http_stub import StubServer

DATA = b"BLENDER-v304 scene bytes"
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    def answer(request):
        if request.path == "/v1/worker/scene/7":
            return 200, DATA, {"X-Sha256": SHA}
        return 404, {"error": "No such frame."}
    stub = StubServer(answer)
    client = FarmClient(stub.url, "tok", max_backoff=0.01)
    yield client, stub.requests
    client.close()
    stub.close()


def lease(url="/v1/worker/scene/7", sha=SHA, path=None):
    return {"leaseId": "L", "render": {"scene": "/D/proj/shot.blend"},
            "scene": {"url": url, "sha256": sha, "path": path}}


def test_download_is_verified_and_cached(tmp_path, server):
    client, calls = server
    cache = SceneCache(tmp_path / "cache", client)
    first = cache.scene_for(lease(), tmp_path / "job1")
    assert first == tmp_path / "cache" / SHA / "shot.blend"
    assert first.read_bytes() == DATA
    assert calls[0].headers["Authorization"] == "Bearer tok"
    second = cache.scene_for(lease(), tmp_path / "job2")
    assert second == first and len(calls) == 1
    assert [p.name for p in first.parent.iterdir()] == ["shot.blend"]


def test_hash_mismatch_is_refused_and_not_cached(tmp_path, server):
    client, _ = server
    cache = SceneCache(tmp_path / "cache", client)
    with pytest.raises(RenderError, match="does not match"):
        cache.scene_for(lease(sha="0" * 64), tmp_path / "job")
    assert list((tmp_path / "cache" / ("0" * 64)).iterdir()) == []


def test_without_hash_the_scene_goes_to_the_job_dir(tmp_path, server):
    client, _ = server
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    assert SceneCache(tmp_path / "cache", client).scene_for(lease(sha=""), job_dir) == job_dir / "shot.blend"


def test_shared_path_wins_and_missing_shared_path_downloads(tmp_path, server):
    client, calls = server
    shared = tmp_path / "studio" / "shot.blend"
    shared.parent.mkdir()
    shared.write_bytes(b"x")
    cache = SceneCache(tmp_path / "cache", client)
    assert cache.scene_for(lease(path=str(shared)), tmp_path) == shared
    assert calls == []
    assert cache.scene_for(lease(path="/not/mounted/shot.blend"), tmp_path).read_bytes() == DATA


def test_no_scene_at_all(tmp_path, server):
    client, _ = server
    assert SceneCache(tmp_path, client).scene_for({"scene": {}}, tmp_path) is None


def test_server_error_is_raised(tmp_path, server):
    client, _ = server
    with pytest.raises(FarmError) as info:
        SceneCache(tmp_path / "cache", client).scene_for(lease(url="/v1/worker/scene/8"), tmp_path)
    assert info.value.status == 404 and info.value.message == "No such frame."


def test_a_task_without_a_scene_fetches_nothing(tmp_path, server):
    client, calls = server
    cache = SceneCache(tmp_path / "cache", client)
    command_lease = {"leaseId": "L", "render": {"software": "command", "scene": ""},
                     "scene": {"url": "/v1/worker/scene/8", "sha256": None, "path": None}}
    assert cache.scene_for(command_lease, tmp_path / "job") is None
    assert calls == []
