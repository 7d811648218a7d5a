"""Stills: recognise a photo, decode it upright (HEIC, HEIF and AVIF too), write its derived image.

For a still the keyframe is the picture itself, upright. EXIF orientation (all eight values,
the mirrored ones too) is applied by Pillow for JPEG, PNG and WebP; HEIF carries its own
rotation and mirroring (irot/imir), which libheif applies while decoding and pillow-heif then
resets the EXIF orientation, so each photo is turned exactly once. The derived image is reduced
(a 48 MP photo is decoded at a fraction of its size where JPEG allows it); the original is only
ever read.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import imagehash
import PIL
import pillow_heif
from PIL import Image, UnidentifiedImageError

pillow_heif.register_heif_opener()

# The long side of the derived image: what reviewers see and what is hashed.
DERIVED_MAX_SIDE_PX = 1920
# A thumbnail whose pHash is this far (of 64 bits) from the main image's shows another picture;
# rescaling and recompressing one picture stays well below it.
THUMBNAIL_DIFFERENT_BITS = 22

STILL_KINDS = ("jpeg", "png", "webp", "heif", "avif")
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
# EXIF orientation -> (clockwise rotation a viewer applies, mirrored).
ORIENTATIONS = {1: (0, False), 2: (0, True), 3: (180, False), 4: (180, True), 5: (270, True), 6: (90, False),
                7: (90, True), 8: (270, False)}  # fmt: skip


_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class PhotoDecodeError(Exception):
    """The still could not be decoded."""


def still_kind(head: bytes) -> str:
    """Return "jpeg", "png", "webp", "heif" or "avif" for a still photo's leading bytes, else ""."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        # An animated PNG declares acTL before its first image data; ffmpeg plays it as video.
        idat, actl = head.find(b"IDAT"), head.find(b"acTL")
        return "" if actl != -1 and (idat == -1 or actl < idat) else "png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        animated = head[12:16] == b"VP8X" and len(head) > 20 and head[20] & 0x02
        return "" if animated else "webp"
    if len(head) >= 16 and head[4:8] == b"ftyp":
        box_size = struct.unpack(">I", head[:4])[0]
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
        if head[8:12] in _AVIF_BRANDS or (head[8:12] in {b"mif1", b"msf1"} and brands & _AVIF_BRANDS):
            return "avif"
        if head[8:12] in _HEIF_BRANDS:
            return "heif"
    return ""


@dataclass(frozen=True)
class DecodedPhoto:
    """What decoding a still found: its format, sizes as stored and as shown, and how it was turned."""

    container: str
    codec: str
    coded_width: int
    coded_height: int
    display_width: int
    display_height: int
    rotation_deg: int
    mirrored: bool
    derived_width: int
    derived_height: int


_CODECS = {"jpeg": "mjpeg", "png": "png", "webp": "webp", "heif": "hevc", "avif": "av1"}


def photo_decode(path: Path, *, kind: str, max_pixels: int, derived_path: Path) -> DecodedPhoto:
    """Decode a still upright, write its reduced derived JPEG to derived_path, and say what was done.

    Raise PhotoDecodeError for a file that is not a decodable picture, and PhotoTooLarge for one
    whose declared size passes max_pixels (checked before any pixel is decoded).
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise PhotoTooLarge(f"{width} x {height}")
            upright = _reduced(image)
            if kind in ("heif", "avif"):
                # libheif applied irot/imir while decoding; pillow-heif keeps the EXIF value it reset.
                orientation = int(image.info.get("original_orientation") or 1)
                rotation, mirrored = ORIENTATIONS.get(orientation, (0, False))
                display = (width, height)
                coded = (height, width) if rotation in (90, 270) else (width, height)
            else:
                orientation = int(image.getexif().get(_ORIENTATION_TAG, 1) or 1)
                rotation, mirrored = ORIENTATIONS.get(orientation, (0, False))
                coded = (width, height)
                display = (height, width) if rotation in (90, 270) else (width, height)
                if orientation in _TRANSPOSE:
                    upright = upright.transpose(_TRANSPOSE[orientation])
    except Image.DecompressionBombError as exc:
        # Pillow refuses far oversized pictures itself, before our own check can see their size.
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        raise PhotoTooLarge(f"{int(declared[1]):,}" if declared else "too many") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, RuntimeError) as exc:
        raise PhotoDecodeError(str(exc) or type(exc).__name__) from exc
    upright.save(derived_path, "JPEG", quality=90)
    return DecodedPhoto(
        container=kind,
        codec=_CODECS[kind],
        coded_width=coded[0],
        coded_height=coded[1],
        display_width=display[0],
        display_height=display[1],
        rotation_deg=rotation,
        mirrored=mirrored,
        derived_width=upright.width,
        derived_height=upright.height,
    )


class PhotoTooLarge(Exception):
    """The still declares more pixels than the service decodes."""

    def __init__(self, size: str):
        super().__init__(size)
        self.size = size


def _reduced(image: Image.Image) -> Image.Image:
    scale = DERIVED_MAX_SIDE_PX / max(image.size)
    if scale < 1:
        # JPEG decodes straight to a half, quarter or eighth; thumbnail() reaches the exact size.
        image.draft("RGB", (max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        reduced = Image.new("RGB", rgba.size, "white")
        reduced.paste(rgba, mask=rgba.getchannel("A"))
    else:
        reduced = image.convert("RGB")
    reduced.thumbnail((DERIVED_MAX_SIDE_PX, DERIVED_MAX_SIDE_PX))
    return reduced


def decoder_version() -> str:
    """Return what decodes stills, as recorded on their derived images."""
    return f"Pillow {PIL.__version__}, pillow-heif {pillow_heif.__version__}"


def thumbnail_distance_bits(path: Path, thumbnail_jpeg: bytes) -> int | None:
    """Return how many of 64 pHash bits the embedded thumbnail differs from the stored main image.

    Both are compared as stored (before orientation): cameras write the thumbnail that way.
    None when the thumbnail cannot be decoded.
    """
    if not thumbnail_jpeg:
        return None
    try:
        with Image.open(io.BytesIO(thumbnail_jpeg)) as thumb:
            thumb_hash = imagehash.phash(thumb.convert("L"))
        with Image.open(path) as image:
            image.draft("L", (256, 256))
            main_hash = imagehash.phash(image.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    return int(thumb_hash - main_hash)
