"""Reviewing a task's outputs, server side (no browser): the listing, one file, the streamed zip, the contact sheet,
the preview movie (real ffmpeg), made in the background when the task ends, the ETA, and who may see them.

One in-process farm (the real Starlette app) for the module; tasks are rendered through the store (a node
registers, leases, completes) and their output files are written where a node's uploads land.
"""

import io
import json
import os
import shutil
import subprocess
import time
import zipfile

import pytest
from PIL import Image

from rayfarm.domain.paths import output_name
from rayfarm.files.outputs import zip_stream
from rayfarm.files.thumbnails import make_thumbnail
from rayfarm.store.schema import frames
from tests.support.farms import claim, complete, register, submit

WEB = {"X-Rayfarm-Web": "1"}
OUTPUTS = "/web/api/rayfarm/task/outputs"
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (scripts/setup.sh)")


def user(farm, name: str):
    from rayfarm.store import users as users_store

    with farm.db.write() as conn:
        return users_store.create(conn, farm.keys, name)


def sign_in(client, who) -> None:
    found, key = who
    answer = client.post("/web/signin", json={"accessId": found.access_id, "accessKey": key}, headers=WEB).json()
    assert answer["code"] == 200, answer


def rendered(farm, owner, count: int, per_chunk: int = 1, size=(97, 55), extra: dict | None = None) -> int:
    """A task whose ``count`` frames were rendered by a node: one PNG per frame (and its thumbnail) in its output
    folder, plus ``extra`` files."""
    task_id = submit(farm, owner, frames=f"1-{count}", per_chunk=per_chunk)
    node = register(farm, f"node-{task_id}")
    folder = farm.storage.output_dir(owner.id, output_name(task_id, "command"))
    folder.mkdir(parents=True, exist_ok=True)
    while claimed := claim(farm, node):
        for item in claimed:
            for number in range(item.frame.start_frame, item.frame.end_frame + 1):
                path = folder / f"shot_{number:04d}.png"
                Image.new("RGB", size, (number * 20 % 256, 90, 160)).save(path)
                make_thumbnail(path, farm.storage.user_dir(owner.id, "thumbnails") / str(task_id) / str(item.frame.id)
                               / f"{path.name}.jpg")
            complete(farm, node, item)
    for name, content in (extra or {}).items():
        (folder / name).write_bytes(content)
    return task_id


def test_the_listing_gives_sizes_frame_numbers_thumbnails_and_preview_state(farm, client):
    alice = user(farm, "lister")
    task_id = rendered(farm, alice[0], 3, extra={"notes.txt": b"hello"})
    sign_in(client, alice)
    answer = client.post(OUTPUTS, json={"taskId": task_id}, headers=WEB).json()
    assert answer["code"] == 200, answer
    data = answer["data"]
    assert data["outputFileName"] == f"{task_id}_command" and data["total"] == 4
    assert [(i["name"], i["frame"], i["image"]) for i in data["items"]] == [
        ("shot_0001.png", 1, True), ("shot_0002.png", 2, True), ("shot_0003.png", 3, True), ("notes.txt", None, False)]
    folder = farm.storage.user_dir(alice[0].id, "output") / data["outputFileName"]
    assert [i["size"] for i in data["items"]] == [(folder / i["name"]).stat().st_size for i in data["items"]]
    assert data["totalBytes"] == sum(i["size"] for i in data["items"])
    assert data["items"][0]["contentType"] == "image/png" and data["items"][0]["path"] == f"/{task_id}_command/shot_0001.png"
    thumb = data["items"][1]["thumbnail"]
    assert thumb.endswith("/shot_0002.png.jpg") and client.get(f"/web/thumbnails{thumb}").status_code == 200
    assert data["items"][3]["thumbnail"] is None
    assert data["previews"]["movie"] == {"ready": False, "current": False, "size": None, "frames": 3}


def test_one_output_is_served_with_its_type_inline_and_other_files_as_attachments(farm, client, tmp_path):
    alice = user(farm, "viewer")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    task_id = rendered(farm, alice[0], 1, extra={"page.svg": svg, "page.html": b"<script>alert(1)</script>"})
    folder = farm.storage.user_dir(alice[0].id, "output") / f"{task_id}_command"
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    os.symlink(secret, folder / "link.png")
    (folder / ".hidden.png").write_bytes(b"hidden")
    base = f"/web/tasks/{task_id}/outputs"
    assert client.get(f"{base}/shot_0001.png").status_code == 401  # not signed in
    sign_in(client, alice)

    png = client.get(f"{base}/shot_0001.png")
    assert png.status_code == 200 and png.content == (folder / "shot_0001.png").read_bytes()
    assert png.headers["content-type"] == "image/png" and png.headers["x-content-type-options"] == "nosniff"
    assert png.headers["content-disposition"].startswith("inline") and "sandbox" in png.headers["content-security-policy"]
    download = client.get(f"{base}/shot_0001.png?download=1")
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''shot_0001.png"
    for name in ("page.svg", "page.html"):  # never a page the browser runs on the farm's origin
        served = client.get(f"{base}/{name}")
        assert served.status_code == 200 and served.headers["content-type"] == "application/octet-stream"
        assert served.headers["content-disposition"].startswith("attachment")
    for name in ("link.png", ".hidden.png", "missing.png", "%2e%2e", "..%2Fshot_0001.png"):
        response = client.get(f"{base}/{name}")
        assert response.status_code == 404 and b"not yours" not in response.content, name
        if "%2F" not in name:  # a name with a slash matches no route at all
            assert response.json() == {"error": "There is no such task or file."}, name


def test_every_output_as_one_zip_streamed_as_it_is_read(farm, client):
    alice = user(farm, "zipper")
    big = os.urandom(5 * 1024 * 1024)  # bigger than a read block: it goes out in several parts
    task_id = rendered(farm, alice[0], 2, extra={"log.txt": b"line\n" * 50_000, "big.exr": big})
    sign_in(client, alice)
    with client.stream("GET", f"/web/tasks/{task_id}/outputs.zip") as response:
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
        assert "content-length" not in response.headers  # sent as it is made, its size unknown up front
        assert response.headers["content-disposition"] == f"attachment; filename*=UTF-8''{task_id}_command.zip"
        parts = list(response.iter_raw())
    archive = zipfile.ZipFile(io.BytesIO(b"".join(parts)))
    assert archive.testzip() is None
    folder = farm.storage.user_dir(alice[0].id, "output") / f"{task_id}_command"
    names = sorted(info.filename for info in archive.infolist())
    assert names == sorted(f"{task_id}_command/{name}" for name in ("shot_0001.png", "shot_0002.png", "log.txt", "big.exr"))
    for info in archive.infolist():
        name = info.filename.split("/", 1)[1]
        assert archive.read(info) == (folder / name).read_bytes()
        # images are stored as they are, text is deflated
        assert info.compress_type == (zipfile.ZIP_DEFLATED if name == "log.txt" else zipfile.ZIP_STORED), name


def test_the_zip_generator_holds_one_block_at_a_time(tmp_path):
    from rayfarm.files.outputs import BLOCK, list_outputs

    (tmp_path / "a.exr").write_bytes(os.urandom(6 * BLOCK))
    (tmp_path / "b.exr").write_bytes(os.urandom(BLOCK))
    stream = zip_stream(list_outputs(tmp_path), "t")
    first = next(stream)
    (tmp_path / "b.exr").write_bytes(b"changed before it was read")  # not read yet: the zip is made as it goes
    rest = list(stream)
    assert max(len(part) for part in [first, *rest]) <= BLOCK + 1024
    archive = zipfile.ZipFile(io.BytesIO(first + b"".join(rest)))
    assert archive.read("t/b.exr") == b"changed before it was read"


def test_contact_sheet_shows_every_frame_in_a_grid(farm, client):
    alice = user(farm, "sheeter")
    task_id = rendered(farm, alice[0], 11, size=(160, 90))
    sign_in(client, alice)
    sheet = client.get(f"/web/tasks/{task_id}/contact-sheet.jpg")
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "image/jpeg"
    assert sheet.headers["x-content-type-options"] == "nosniff"
    with Image.open(io.BytesIO(sheet.content)) as image:
        # 8 columns of 160 px thumbnails, 2 rows with a line for the frame number under each
        assert image.format == "JPEG" and image.size == (8 + 8 * (160 + 8), 8 + 2 * (90 + 22 + 8))
        # the 11th cell holds frame 11's colour; the 12th is empty background
        assert abs(image.getpixel((8 + 2 * 168 + 80, 8 + 128 + 45))[0] - 11 * 20 % 256) < 12
        assert image.getpixel((8 + 3 * 168 + 80, 8 + 128 + 45)) == pytest.approx((24, 28, 36), abs=6)
    state = client.post(OUTPUTS, json={"taskId": task_id}, headers=WEB).json()["data"]["previews"]
    assert state["sheet"]["ready"] and state["sheet"]["current"] and not state["movie"]["ready"]


def probe(path) -> dict:
    done = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json",
                           str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@needs_ffmpeg
def test_preview_movie_is_h264_yuv420p_with_even_sides_and_every_frame(farm, client, tmp_path):
    alice = user(farm, "moviegoer")
    task_id = rendered(farm, alice[0], 5, size=(97, 55))  # odd sides: the movie's are made even
    sign_in(client, alice)
    movie = client.get(f"/web/tasks/{task_id}/preview.mp4")
    assert movie.status_code == 200, movie.text
    assert movie.headers["content-type"] == "video/mp4" and movie.headers["accept-ranges"] == "bytes"
    (tmp_path / "m.mp4").write_bytes(movie.content)
    found = probe(tmp_path / "m.mp4")
    (stream,) = found["streams"]
    assert (stream["codec_name"], stream["pix_fmt"], stream["width"], stream["height"]) == ("h264", "yuv420p", 96, 54)
    assert int(stream["nb_read_frames"]) == 5
    assert movie.content.index(b"moov") < movie.content.index(b"mdat")  # plays as it arrives (faststart)
    # a part of it, as a <video> asks when it seeks
    part = client.get(f"/web/tasks/{task_id}/preview.mp4", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == movie.content[:100]
    # current: asked again, the same file; a frame rendered again makes it stale, the next look makes it again
    path = farm.storage.user_dir(alice[0].id, "previews") / str(task_id) / "preview.mp4"
    made = path.stat().st_mtime_ns
    assert client.get(f"/web/tasks/{task_id}/preview.mp4").content == movie.content and path.stat().st_mtime_ns == made
    frame = farm.storage.user_dir(alice[0].id, "output") / f"{task_id}_command" / "shot_0003.png"
    os.utime(frame, (time.time() + 5, time.time() + 5))
    listed = client.post(OUTPUTS, json={"taskId": task_id}, headers=WEB).json()["data"]["previews"]["movie"]
    assert listed["ready"] and not listed["current"]
    client.get(f"/web/tasks/{task_id}/preview.mp4")
    assert path.stat().st_mtime_ns != made


@needs_ffmpeg
def test_previews_are_made_in_the_background_when_a_task_ends(farm):
    alice = user(farm, "background")
    task_id = rendered(farm, alice[0], 3)
    folder = farm.storage.user_dir(alice[0].id, "previews") / str(task_id)
    assert not folder.exists()
    waiting = submit(farm, alice[0], frames="1-2")  # not finished: nothing is made for it
    farm.previews.notice(task_id)
    farm.previews.notice(waiting)
    farm.previews.make_due(farm.db)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["contact-sheet.jpg", "preview.mp4"]
    assert not (farm.storage.user_dir(alice[0].id, "previews") / str(waiting)).exists()


def test_another_users_task_answers_like_an_unknown_one(farm, client):
    alice, bob = user(farm, "owner"), user(farm, "stranger")
    task_id = rendered(farm, alice[0], 1)
    sign_in(client, bob)
    for suffix in ("outputs/shot_0001.png", "outputs.zip", "contact-sheet.jpg", "preview.mp4"):
        theirs = client.get(f"/web/tasks/{task_id}/{suffix}")
        nobodys = client.get(f"/web/tasks/1999999999/{suffix}")
        assert theirs.status_code == nobodys.status_code == 404 and theirs.content == nobodys.content, suffix
    listed = client.post(OUTPUTS, json={"taskId": task_id}, headers=WEB).json()
    unknown = client.post(OUTPUTS, json={"taskId": 1999999999}, headers=WEB).json()
    assert listed["code"] == unknown["code"] == 937 and listed["message"].replace(str(task_id), "N") == \
        unknown["message"].replace("1999999999", "N")
    assert not (farm.storage.user_dir(alice[0].id, "previews") / str(task_id)).exists()  # nothing made for bob


def test_eta_of_a_rendering_task_comes_from_its_done_chunks(farm, client):
    alice = user(farm, "eta")
    task_id = submit(farm, alice[0], frames="1-8", per_chunk=2)  # 4 chunks of 2 frames
    node_a, node_b = register(farm, "eta-a"), register(farm, "eta-b")
    (first,) = claim(farm, node_a)
    with farm.db.write() as conn:
        from rayfarm.scheduler import results

        results.complete(conn, node_a.id, first.frame.lease_id, "done", error=None, seconds=30.0, avg_cpu=None,
                         avg_memory=None, now=time.time())
    claim(farm, node_a)
    claim(farm, node_b)  # two chunks rendering now, at 0%, one waiting
    sign_in(client, alice)
    item = client.post("/web/api/render/handle/queryTaskInfo/v2", json={"taskIds": [task_id]},
                       headers=WEB).json()["data"]["items"][0]
    # 15 s a frame (30 s for the done chunk's 2 frames); 6 frames left on 2 lanes: 45 s
    assert item["taskStatus"] == 5 and item["secondsPerFrame"] == 15 and item["etaSeconds"] == 45
    assert item["framesPerChunk"] == 2 and item["jobStopTime"] == 259200
    with farm.db.read() as conn:
        chunks = conn.execute(frames.select().where(frames.c.task_id == task_id)).all()
    assert sorted(c.status for c in chunks) == [1, 2, 2, 4]
    listed = client.post("/web/api/render/handle/queryTaskFrames", json={"taskId": task_id, "status": [1]},
                         headers=WEB).json()["data"]
    assert listed["total"] == 1 and listed["chunkCounts"] == {"1": 1, "2": 2, "4": 1}
