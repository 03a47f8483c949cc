"""A done chunk's thumbnails against a real server: listed as soon as the chunk is done, made when one is first
downloaded (never while the node reports the chunk), kept, made again once the frame is rendered again, and the
same file through the signed download and the dashboard. The node speaks the native node API by hand
(``tests.support.fake_node.Node``)."""

import io

import httpx
import pytest
from PIL import Image

from tests.support import taskjson
from tests.support.fake_node import Node
from tests.support.farms import make_users, running_farm
from tests.support.signed import DOWNLOAD, THUMBNAIL, WEB, Raw

RECOMMIT_FRAMES = "/api/render/handle/recommitTaskFrames"


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "thumbnails")


def png(colour: tuple[int, int, int], size=(640, 360)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(content: bytes) -> tuple[tuple[int, int], tuple[int, ...]]:
    """(size, the centre pixel) of a whole JPEG."""
    with Image.open(io.BytesIO(content)) as image:
        assert image.format == "JPEG"
        image.load()
        return image.size, image.getpixel((image.width // 2, image.height // 2))


def near(pixel, colour) -> bool:
    return all(abs(a - b) <= 8 for a, b in zip(pixel, colour, strict=True))


def test_a_done_chunks_thumbnail_is_made_when_first_asked_for_kept_and_made_again_after_a_rerender(farm):
    (tina,) = make_users(farm, "tina", commands=("tina",))
    raw, node = Raw(farm, tina), Node(farm, "thumb-node")
    try:
        task_id = raw.submit(taskjson.command(frames="1-1"))
        (lease,) = node.lease()
        node.finish(lease, {"f_0001.png": png((200, 0, 0)), "notes.txt": b"not an image"})
        frame = lease["frameId"]
        folder = farm.data_dir / "storage" / str(tina.user_id) / "thumbnails" / str(task_id) / str(frame)

        def made() -> list[str]:
            return sorted(p.name for p in folder.glob("*.jpg"))

        assert made() == []  # the result cost no image work
        path = f"/{task_id}/{frame}/f_0001.png.jpg"
        assert raw.ok(THUMBNAIL, {"id": frame}) == [path]  # listed at once (the text file has none)
        assert made() == []  # listing makes nothing

        first = raw.send(DOWNLOAD, {"path": path, "area": "thumbnails"})
        assert first.status_code == 200, first.text
        size, pixel = jpeg(first.content)
        assert size == (320, 180) and near(pixel, (200, 0, 0))
        assert made() == ["f_0001.png.jpg"]
        kept = (folder / "f_0001.png.jpg").stat()
        again = raw.send(DOWNLOAD, {"path": path, "area": "thumbnails"})
        assert again.content == first.content
        assert (folder / "f_0001.png.jpg").stat().st_ino == kept.st_ino  # kept, not made again

        # the frame rendered again, in another colour: the next look makes the thumbnail again
        assert raw.ok(RECOMMIT_FRAMES, {"taskId": task_id, "ids": [frame]}) == {"count": 1}
        (second,) = node.lease()
        assert second["frameId"] == frame
        node.finish(second, {"f_0001.png": png((0, 0, 200))})
        assert raw.ok(THUMBNAIL, {"id": frame}) == [path]
        rendered_again = raw.send(DOWNLOAD, {"path": path, "area": "thumbnails"})
        assert near(jpeg(rendered_again.content)[1], (0, 0, 200))

        # the dashboard's route serves that same file
        with httpx.Client(base_url=farm.url, timeout=30) as web:
            signed_in = web.post("/web/signin", json={"accessId": tina.access_id, "accessKey": tina.access_key},
                                 headers=WEB)
            assert signed_in.json()["code"] == 200
            shown = web.get(f"/web/thumbnails{path}")
            assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
            assert shown.content == rendered_again.content
            assert web.get(f"/web/thumbnails/{task_id}/{frame}/notes.txt.jpg").status_code == 404
    finally:
        raw.close()
        node.close()


def test_the_latest_image_and_the_outputs_list_name_thumbnails_before_any_is_made(farm):
    (tom,) = make_users(farm, "tom", commands=("tom",))
    raw, node = Raw(farm, tom), Node(farm, "latest-node")
    try:
        task_id = raw.submit(taskjson.command(frames="1-2", per_chunk=2))
        (lease,) = node.lease()
        node.finish(lease, {"f_0001.png": png((0, 200, 0), (64, 48)), "f_0002.png": png((0, 0, 200), (64, 48))})
        folder = farm.data_dir / "storage" / str(tom.user_id) / "thumbnails" / str(task_id) / str(lease["frameId"])
        assert not list(folder.glob("*.jpg"))
        grab = raw.ok("/api/render/handle/loadTaskProcessImg", {"taskId": task_id})["grabInfo"][0][0]
        assert grab["thumbnailUrl"] == f"/{task_id}/{lease['frameId']}/f_0002.png.jpg"  # the chunk's last frame
        listing = raw.ok("/api/rayfarm/task/outputs", {"taskId": task_id})
        assert [i["thumbnail"] for i in listing["items"]] == [f"/{task_id}/{lease['frameId']}/f_0001.png.jpg",
                                                               grab["thumbnailUrl"]]
        assert not list(folder.glob("*.jpg"))  # naming them made none
        thumbnail = raw.send(DOWNLOAD, {"path": grab["thumbnailUrl"], "area": "thumbnails"})
        assert jpeg(thumbnail.content)[0] == (64, 48) and near(jpeg(thumbnail.content)[1], (0, 0, 200))
    finally:
        raw.close()
        node.close()
