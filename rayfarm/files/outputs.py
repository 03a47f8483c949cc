"""A task's output files on disk: listed with sizes and frame numbers, typed for serving, zipped as a stream.

The output folder of a task is flat (``<taskId>_<scene>/``, one file per rendered image or whatever a command
wrote). A file's frame number is the last group of digits in its name (Blender's ``####``): ``shot_0007.png``
is frame 7; a name without digits has none.
"""

import os
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Served inline (the dashboard shows them): raster images browsers decode, and movies. Anything else is sent
# as a download of bytes, never as a page the browser would run (an SVG or HTML output stays inert).
INLINE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                ".gif": "image/gif", ".bmp": "image/bmp", ".mp4": "video/mp4", ".webm": "video/webm"}
DOWNLOAD_TYPES = {".exr": "image/x-exr", ".tif": "image/tiff", ".tiff": "image/tiff", ".tga": "image/x-tga",
                  ".hdr": "image/vnd.radiance", ".txt": "text/plain; charset=utf-8", ".zip": "application/zip"}
# Pillow decodes these (thumbnails, contact sheet, preview movie); EXR and HDR it does not.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".tga"}
# Compressed already: stored in a zip as they are (deflating them again costs time and saves nothing).
COMPRESSED = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp4", ".webm", ".zip", ".exr", ".jp2"}
DIGITS = re.compile(r"\d+")
BLOCK = 1024 * 1024


@dataclass(frozen=True)
class Output:
    name: str
    path: Path
    size: int
    modified: float
    frame: int | None

    @property
    def image(self) -> bool:
        return self.path.suffix.lower() in IMAGE_SUFFIXES


def frame_number(name: str) -> int | None:
    """The frame a file name holds: its stem's last group of digits (``shot_0007.png`` -> 7), else None."""
    found = DIGITS.findall(name.rsplit(".", 1)[0] if "." in name else name)
    return int(found[-1]) if found else None


def content_type(name: str) -> tuple[str, bool]:
    """(Content-Type, inline) of a file served to a browser: inline only for the image and movie types above."""
    suffix = Path(name).suffix.lower()
    if suffix in INLINE_TYPES:
        return INLINE_TYPES[suffix], True
    return DOWNLOAD_TYPES.get(suffix, "application/octet-stream"), False


def list_outputs(folder: Path) -> list[Output]:
    """The regular files of an output folder (no hidden ones, no links), by frame number then name."""
    found = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        stat = entry.stat(follow_symlinks=False)
        found.append(Output(entry.name, Path(entry.path), stat.st_size, stat.st_mtime, frame_number(entry.name)))
    return sorted(found, key=lambda o: (o.frame is None, o.frame or 0, o.name))


class _Sink:
    """What zipfile writes into: bytes collected until the generator hands them on (no seeking: zipfile then
    writes each entry's sizes and CRC after its data, in a data descriptor)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.written = 0

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def zip_stream(files: list[Output], folder_name: str) -> Iterator[bytes]:
    """A zip of ``files`` under ``folder_name/``, made as it is sent: each file is read a block at a time and its
    compressed bytes are yielded at once, so memory holds one block whatever the size of the task."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        for output in files:
            compress = zipfile.ZIP_STORED if output.path.suffix.lower() in COMPRESSED else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(f"{folder_name}/{output.name}", time.localtime(output.modified)[:6])
            info.compress_type = compress
            info.file_size = output.size  # zipfile writes zip64 headers when the size needs them
            info.external_attr = 0o644 << 16
            with open(output.path, "rb") as source, archive.open(info, "w") as entry:
                while block := source.read(BLOCK):
                    entry.write(block)
                    if sink.parts:
                        yield sink.take()
            yield sink.take()
    yield sink.take()
