"""Thumbnails on disk (rayfarm/files/thumbnails.py): what a done chunk writes down, what the listings name, and
files made when first asked for, whole even when requests race."""

import os
import threading

from PIL import Image

from rayfarm.files.storage import Storage
from rayfarm.files.thumbnails import LIST, Thumbnails

USER, TASK, FRAME, FOLDER = 1, 7, 3, "7_scene"


def farm_files(tmp_path, size=(1280, 720)):
    storage = Storage(tmp_path / "storage")
    outputs = storage.user_dir(USER, "output") / FOLDER
    outputs.mkdir(parents=True)
    Image.new("RGB", size, (10, 200, 30)).save(outputs / "f_0001.png")
    return storage, Thumbnails(storage), outputs


def test_a_chunk_writes_down_only_its_stored_images_and_decodes_nothing(tmp_path):
    storage, thumbs, outputs = farm_files(tmp_path)
    (outputs / "notes.txt").write_text("not an image")
    (outputs / "broken.exr").write_bytes(b"EXR is not decoded by the farm")
    os.symlink(outputs / "f_0001.png", outputs / "link.png")
    names = ["f_0001.png", "notes.txt", "broken.exr", "link.png", "missing.png", "../f_0001.png", ".hidden.png", ""]
    assert thumbs.record(USER, TASK, FRAME, FOLDER, names) == 1
    chunk = storage.user_dir(USER, "thumbnails") / str(TASK) / str(FRAME)
    assert sorted(p.name for p in chunk.iterdir()) == [LIST]  # the list only: no thumbnail yet
    assert thumbs.listed(USER, TASK, FRAME) == ["f_0001.png.jpg"]
    assert thumbs.of_task(USER, TASK) == {"f_0001.png": f"/{TASK}/{FRAME}/f_0001.png.jpg"}
    assert thumbs.current(USER, TASK) == {}
    # nothing worth a thumbnail: nothing is written
    assert thumbs.record(USER, TASK, FRAME + 1, FOLDER, ["notes.txt", "link.png"]) == 0
    assert not (chunk.parent / str(FRAME + 1)).exists()


def test_a_thumbnail_is_made_once_then_again_when_its_output_is_newer(tmp_path):
    storage, thumbs, outputs = farm_files(tmp_path)
    thumbs.record(USER, TASK, FRAME, FOLDER, ["f_0001.png"])
    made = thumbs.file(USER, f"/{TASK}/{FRAME}/f_0001.png.jpg")
    with Image.open(made) as image:
        assert image.format == "JPEG" and image.size == (320, 180) and image.getpixel((160, 90))[1] > 150
    assert thumbs.current(USER, TASK) == {"f_0001.png": made}
    first = made.stat()
    assert thumbs.file(USER, f"{TASK}/{FRAME}/f_0001.png.jpg") == made and made.stat().st_ino == first.st_ino
    Image.new("RGB", (640, 480), (200, 10, 30)).save(outputs / "f_0001.png")  # rendered again
    os.utime(outputs / "f_0001.png", ns=(first.st_mtime_ns + 10**9, first.st_mtime_ns + 10**9))
    assert thumbs.current(USER, TASK) == {}  # stale: the contact sheet reads the output instead
    again = thumbs.file(USER, f"{TASK}/{FRAME}/f_0001.png.jpg")
    with Image.open(again) as image:
        assert image.size == (320, 240) and image.getpixel((160, 120))[0] > 150
    for path in (f"{TASK}/{FRAME}/notes.txt.jpg", f"{TASK}/{FRAME}/../{FRAME}/f_0001.png.jpg", f"{TASK}/f_0001.png.jpg",
                 f"{TASK}/{FRAME + 1}/f_0001.png.jpg", f"{TASK}/{FRAME}/f_0001.png", f"{TASK}/{FRAME}/.outputs.jpg"):
        assert thumbs.file(USER, path) is None, path


def test_an_output_that_cannot_be_decoded_has_no_thumbnail_file(tmp_path):
    storage, thumbs, outputs = farm_files(tmp_path)
    (outputs / "f_0002.png").write_bytes(b"\x89PNG but cut short")
    thumbs.record(USER, TASK, FRAME, FOLDER, ["f_0002.png"])
    assert thumbs.file(USER, f"{TASK}/{FRAME}/f_0002.png.jpg") is None
    chunk = storage.user_dir(USER, "thumbnails") / str(TASK) / str(FRAME)
    assert sorted(p.name for p in chunk.iterdir()) == [LIST]  # no half-made file left behind


def test_racing_requests_each_get_a_whole_thumbnail_and_leave_no_temporary_files(tmp_path):
    storage, thumbs, outputs = farm_files(tmp_path, size=(1920, 1080))
    thumbs.record(USER, TASK, FRAME, FOLDER, ["f_0001.png"])
    target = storage.user_dir(USER, "thumbnails") / str(TASK) / str(FRAME) / "f_0001.png.jpg"
    makers, rounds, done = 4, 12, threading.Event()
    answers, broken = [], []

    def read_while_made():  # whoever looks at the file while it is being made sees a whole JPEG or none
        while not done.is_set():
            try:
                with Image.open(target) as image:
                    image.load()
            except FileNotFoundError:
                continue
            except OSError as exc:
                broken.append(str(exc))

    def make(barrier):
        barrier.wait()
        answers.append(thumbs.file(USER, f"{TASK}/{FRAME}/f_0001.png.jpg"))

    reader = threading.Thread(target=read_while_made)
    reader.start()
    try:
        for _ in range(rounds):
            target.unlink(missing_ok=True)
            barrier = threading.Barrier(makers)
            threads = [threading.Thread(target=make, args=(barrier,)) for _ in range(makers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        done.set()
        reader.join()
    assert answers == [target] * (makers * rounds)
    assert broken == []
    assert sorted(p.name for p in target.parent.iterdir()) == [LIST, target.name]
