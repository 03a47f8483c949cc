"""Thumbnails of rendered images (JPEG, at most 320 × 320)."""

from pathlib import Path

THUMBNAIL_SIZE = (320, 320)


def make_thumbnail(source: Path, target: Path) -> bool:
    """A JPEG thumbnail of an image Pillow can decode; False for anything else (no fake thumbnails)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            image.thumbnail(THUMBNAIL_SIZE)
            target.parent.mkdir(parents=True, exist_ok=True)
            image.convert("RGB").save(target, "JPEG", quality=85)
        return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False
