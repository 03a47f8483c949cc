"""Previews of a task's rendered frames: a contact sheet (Pillow) and a preview movie (ffmpeg).

The contact sheet is one JPEG: every frame as a thumbnail in a grid, its frame number under it. The movie is
an H.264 MP4 (yuv420p, even width and height, its index at the front) that browsers play as it arrives:
each frame is decoded with Pillow, scaled to the first frame's size (at most 1920 pixels wide) and piped to
ffmpeg as raw RGB, so any image Pillow reads makes a movie and no frame list or image format reaches ffmpeg's
command line. Both are written beside their final name and renamed into place when complete.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

CELL = (240, 160)  # the largest thumbnail in a contact-sheet cell
LABEL = 22  # pixels under each thumbnail for its frame number
GAP = 8
MAX_COLUMNS = 8
MAX_SHEET_FRAMES = 400  # a bigger task's sheet shows this many frames, evenly spread
MAX_MOVIE_WIDTH = 1920
FPS = 24
FFMPEG_SECONDS = 1800  # longest a movie may take to encode


class PreviewError(Exception):
    """A preview cannot be made; the message says why, for the user."""


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # a Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _spread(items: Sequence, limit: int) -> list:
    """At most ``limit`` of the items, first and last included, evenly spread."""
    if len(items) <= limit:
        return list(items)
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


def contact_sheet(frames: Sequence[tuple[str, Path]], target: Path) -> int:
    """Write the contact sheet of ``frames`` ((label, image file), in order) to ``target``; the frames shown."""
    from PIL import Image, ImageDraw, UnidentifiedImageError

    shown = []
    for label, path in _spread(frames, MAX_SHEET_FRAMES):
        try:
            with Image.open(path) as image:
                image.draft("RGB", CELL)  # JPEG thumbnails decode at a fraction of their size
                image.thumbnail(CELL)
                shown.append((label, image.convert("RGB")))
        except (UnidentifiedImageError, OSError, ValueError):
            continue  # not an image Pillow reads: no cell
    if not shown:
        raise PreviewError("No frame of this task is an image the farm can read (PNG, JPEG, TIFF, WebP...), so there "
                           "is no contact sheet.")
    columns = min(MAX_COLUMNS, len(shown))
    rows = -(-len(shown) // columns)
    cell_w = max(image.width for _, image in shown)
    cell_h = max(image.height for _, image in shown) + LABEL
    sheet = Image.new("RGB", (GAP + columns * (cell_w + GAP), GAP + rows * (cell_h + GAP)), (24, 28, 36))
    draw, font = ImageDraw.Draw(sheet), _font(14)
    for index, (label, image) in enumerate(shown):
        x = GAP + (index % columns) * (cell_w + GAP)
        y = GAP + (index // columns) * (cell_h + GAP)
        sheet.paste(image, (x + (cell_w - image.width) // 2, y + (cell_h - LABEL - image.height) // 2))
        draw.text((x + cell_w // 2, y + cell_h - LABEL // 2), label, fill=(235, 238, 245), font=font, anchor="mm")
    _write(target, lambda temp: sheet.save(temp, "JPEG", quality=85))
    return len(shown)


def ffmpeg() -> str:
    """The ffmpeg program; PreviewError saying how to install it when it is missing."""
    program = shutil.which("ffmpeg")
    if program is None:
        raise PreviewError("ffmpeg is not installed on the farm's server, so it cannot make preview movies; install "
                           "it (apt-get install ffmpeg; scripts/setup.sh does).")
    return program


def _gentle() -> list[str]:
    """``nice -n 10`` where there is one: encoding a movie yields the CPU to the farm's requests."""
    program = shutil.which("nice")
    return [program, "-n", "10"] if program else []


def movie_size(width: int, height: int) -> tuple[int, int]:
    """The movie's size for frames of this size: at most MAX_MOVIE_WIDTH wide, both sides even (yuv420p)."""
    if width > MAX_MOVIE_WIDTH:
        height, width = max(1, round(height * MAX_MOVIE_WIDTH / width)), MAX_MOVIE_WIDTH
    return max(2, width - width % 2), max(2, height - height % 2)


def preview_movie(images: Sequence[Path], target: Path, fps: int = FPS) -> int:
    """Encode ``images`` (in order) as the task's preview movie at ``target``; the number of frames in it."""
    from PIL import Image, UnidentifiedImageError

    program = ffmpeg()
    size = None
    frames = 0

    def encode(temp: Path) -> None:
        nonlocal size, frames
        process = None
        try:
            for path in images:
                try:
                    with Image.open(path) as image:
                        if size is None:
                            size = movie_size(image.width, image.height)
                            process = subprocess.Popen(
                                [*_gentle(), program, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
                                 "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}", "-r", str(fps), "-i", "-",
                                 "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                                 "-movflags", "+faststart", "-f", "mp4", str(temp)],
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
                        frame = image.convert("RGB")
                        if frame.size != size:
                            frame = frame.resize(size, Image.Resampling.BILINEAR)
                except (UnidentifiedImageError, OSError, ValueError):
                    continue  # not an image Pillow reads: left out
                process.stdin.write(frame.tobytes())
                frames += 1
            if process is None:
                raise PreviewError("No frame of this task is an image the farm can read (PNG, JPEG, TIFF, WebP...), "
                                   "so there is no preview movie.")
            process.stdin.close()
            errors = process.stderr.read().decode(errors="replace").strip()
            if process.wait(timeout=FFMPEG_SECONDS) != 0:
                raise PreviewError(f"ffmpeg could not make the preview movie: {errors[-500:] or 'no message'}")
        except BrokenPipeError:
            errors = process.stderr.read().decode(errors="replace").strip()
            raise PreviewError(f"ffmpeg stopped while making the preview movie: {errors[-500:] or 'no message'}") from None
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    _write(target, encode)
    return frames


def _write(target: Path, make) -> None:
    """Run ``make(temp)`` on a temporary file beside ``target``, then rename it into place (readers never see
    half a file); the temporary file is removed whatever happens."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".making-", suffix=target.suffix)
    os.close(fd)
    temp = Path(name)
    try:
        make(temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
