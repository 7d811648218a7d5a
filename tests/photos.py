"""Make photos for the tests from real photographs that ship inside scikit-image, tagged with exiftool."""

from __future__ import annotations

import subprocess
from pathlib import Path

import skimage.data
from PIL import Image

# Real photographs shipped in scikit-image's package (no download): a portrait and a still life.
PHOTOGRAPHS = ("astronaut.png", "coffee.png", "chelsea.png")


def photograph(name: str = "astronaut.png") -> Image.Image:
    """Return one of the photographs shipped in scikit-image, as RGB."""
    with Image.open(Path(skimage.data.__file__).parent / name) as image:
        return image.convert("RGB")


def camera_jpeg(path: Path, *, name: str = "astronaut.png", size: tuple[int, int] | None = None, **tags: str) -> Path:
    """Write a JPEG of a real photograph, then tag it with exiftool (``-TAG=value`` per keyword)."""
    image = photograph(name)
    if size is not None:
        image = image.resize(size, Image.Resampling.BICUBIC)
    image.save(path, "JPEG", quality=90)
    return exiftool_write(path, tags) if tags else path


def exiftool_write(path: Path, tags: dict[str, str], *extra: str) -> Path:
    """Write tags into a file in place with exiftool; keyword names may use ``__`` for ``:``."""
    args = [f"-{name.replace('__', ':')}={value}" for name, value in tags.items()]
    subprocess.run(["exiftool", "-q", "-q", "-overwrite_original", *args, *extra, str(path)], check=True)  # noqa: S603, S607
    return path


def phone_jpeg(path: Path, **extra: str) -> Path:
    """Write a JPEG tagged as an iPhone photo taken in Kyiv at 14:03:22.120 local time, UTC+03:00."""
    tags = {
        "Make": "Apple",
        "Model": "iPhone 13",
        "LensModel": "iPhone 13 back dual wide camera 5.1mm f/1.6",
        "Software": "16.5",
        "DateTimeOriginal": "2023:06:01 14:03:22",
        "OffsetTimeOriginal": "+03:00",
        "SubSecTimeOriginal": "120",
        "GPSLatitude": "50.4501",
        "GPSLatitudeRef": "N",
        "GPSLongitude": "30.5234",
        "GPSLongitudeRef": "E",
        "GPSAltitude": "179",
        "GPSAltitudeRef": "Above Sea Level",
        "GPSHPositioningError": "4.5",
        "GPSImgDirection": "121.5",
        **extra,
    }
    return camera_jpeg(path, **tags)
