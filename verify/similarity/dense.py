"""Dense frame hashes: a PDQ hash of every frame at a fixed rate, inside any black bars, stored compactly.

The keyframe pass writes a small RGB copy of the video at ``rate_hz`` frames per second
(``verify.ffmpeg.keyframes_argv(dense=...)``) in the same decoding pass. Black bars (letterbox,
pillarbox) are found from the whole clip, and every frame is hashed inside them, so a copy with
bars hashes like the original without. A still is one frame at t=0.

Each frame is hashed whole (inside the bars) and, from the same decoded picture, in parts
(``CROPS``): its central 70 % (``inner``: a caption band along an edge covers a large part of
the frame but little of its centre), its left and right 60 % (``left``, ``right``: a large logo
in a corner leaves one of them clear) and its central 90 % (``cropped``: what a copy cropped by
about a tenth shows whole). ``verify.similarity.dense_matching`` says how each is looked up.

One frame is 37 bytes in the database per hash (``FRAME_DTYPE``: time in ms, PDQ quality,
256-bit hash).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pdqhash

from verify.similarity.hashes import PDQ_BITS, PDQ_BYTES

FRAME_DTYPE = np.dtype([("time_ms", "<u4"), ("quality", "u1"), ("pdq", "u1", (PDQ_BYTES,))])
# The largest side of the dense copy: PDQ reduces every picture to 64x64, and a small copy
# keeps decoding, storage and hashing cheap.
DENSE_MAX_SIDE_PX = 160
# A row or column is part of a bar when it is this dark (0-255) in every sampled frame...
_BAR_MAX_LUMA = 28
# ...and the bars together leave at least this share of the frame.
_MIN_CONTENT_SHARE = 0.25
# The parts of a frame hashed besides the whole: (left, top, right, bottom) as shares of the
# picture inside the bars, and whether all eight orientations are hashed (the centre crops look
# alike turned or mirrored; the side parts do not, and are hashed upright only). Measured on the
# recycled-footage evaluation (docs/recycled-footage.md): the central 70 % rescues both caption
# bands and one of two large logos (60-65 % loses a letterboxed copy, 80-90 % keeps too much of
# the logo); the left 60 % both large logos; the central 90 % both copies cropped by 10 %.
CROPS: dict[str, tuple[tuple[float, float, float, float], bool]] = {
    "inner": ((0.15, 0.15, 0.85, 0.85), True),
    "left": ((0.0, 0.0, 0.6, 1.0), False),
    "right": ((0.4, 0.0, 1.0, 1.0), False),
    "cropped": ((0.05, 0.05, 0.95, 0.95), True),
}
# pdqhash.compute_dihedral's order: as is, rotated 90° counter-clockwise, 180°, 90° clockwise,
# flipped top to bottom, mirrored left to right, and the two transposes.
DIHEDRAL_NAMES = ("upright", "rotated", "rotated", "rotated", "mirrored", "mirrored", "mirrored", "mirrored")


@dataclass(frozen=True)
class DenseFrames:
    """The dense hashes of one item, the bars removed (fractions of the frame) and the rate."""

    frames: np.ndarray  # FRAME_DTYPE
    rate_hz: float
    bars: tuple[float, float, float, float]  # left, top, right, bottom
    dihedral: np.ndarray  # (n, 8 or 1, PDQ_BYTES): every frame's orientations looked up
    # The same frames' parts (CROPS), by name, hashed alike.
    crops: dict[str, DenseFrames] = field(default_factory=dict)

    @property
    def has_bars(self) -> bool:
        return any(b > 0 for b in self.bars)


def dense_size(display_width: int, display_height: int) -> tuple[int, int]:
    """Return the even width and height of the dense copy of a picture of this size."""
    scale = DENSE_MAX_SIDE_PX / max(display_width, display_height, 1)
    return max(2, round(display_width * scale / 2) * 2), max(2, round(display_height * scale / 2) * 2)


def bars_find(pictures: np.ndarray) -> tuple[int, int, int, int]:
    """Return the black bars of a clip as pixel counts (left, top, right, bottom), from (n, h, w, 3) pictures."""
    luma = pictures.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    brightest = luma.max(axis=0)  # (h, w): a bar is dark in every frame
    rows = brightest.max(axis=1) <= _BAR_MAX_LUMA
    cols = brightest.max(axis=0) <= _BAR_MAX_LUMA
    height, width = brightest.shape

    def run(flags: np.ndarray) -> int:
        count = 0
        for flag in flags:
            if not flag:
                break
            count += 1
        return count

    left, right, top, bottom = run(cols), run(cols[::-1]), run(rows), run(rows[::-1])
    if (width - left - right) < width * _MIN_CONTENT_SHARE or (height - top - bottom) < height * _MIN_CONTENT_SHARE:
        return (0, 0, 0, 0)  # a dark clip, not bars
    # Scaling blurs the edge of a bar into the picture: take one more line off each side that has one.
    return tuple(n + 1 if n else 0 for n in (left, top, right, bottom))  # type: ignore[return-value]


def _part(picture: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    height, width = picture.shape[:2]
    left, top, right, bottom = box
    part = picture[round(height * top) : round(height * bottom), round(width * left) : round(width * right)]
    return np.ascontiguousarray(part)


def pictures_hash(pictures: np.ndarray, *, times_s: np.ndarray, rate_hz: float) -> DenseFrames:
    """Hash (n, h, w, 3) RGB pictures inside their bars, whole and in parts; return them with their times."""
    left, top, right, bottom = bars_find(pictures) if len(pictures) else (0, 0, 0, 0)
    height, width = pictures.shape[1:3] if len(pictures) else (1, 1)
    bars = (left / width, top / height, right / width, bottom / height)
    parts = {"": ((0.0, 0.0, 1.0, 1.0), True), **CROPS}
    views = {name: np.zeros(len(pictures), dtype=FRAME_DTYPE) for name in parts}
    dihedrals = {
        name: np.zeros((len(pictures), 8 if turned else 1, PDQ_BYTES), dtype=np.uint8)
        for name, (_, turned) in parts.items()
    }
    for index, picture in enumerate(pictures):
        inside = picture[top : height - bottom, left : width - right]
        time_ms = round(float(times_s[index]) * 1000)
        for name, (box, turned) in parts.items():
            part = _part(inside, box)
            hashes, quality = pdqhash.compute_dihedral(part) if turned else pdqhash.compute(part)
            bits = np.asarray(hashes, dtype=np.uint8).reshape(-1, PDQ_BITS)
            dihedrals[name][index] = np.packbits(bits, axis=1)
            views[name][index] = (time_ms, int(quality), dihedrals[name][index, 0])
    crops = {
        name: DenseFrames(frames=views[name], rate_hz=rate_hz, bars=bars, dihedral=dihedrals[name]) for name in CROPS
    }
    return DenseFrames(frames=views[""], rate_hz=rate_hz, bars=bars, dihedral=dihedrals[""], crops=crops)


def raw_video_hash(path: Path, *, width: int, height: int, rate_hz: float) -> DenseFrames:
    """Hash the raw RGB frames ffmpeg wrote at rate_hz; frame n shows the moment n / rate_hz."""
    data = np.fromfile(path, dtype=np.uint8) if path.exists() else np.zeros(0, dtype=np.uint8)
    count = len(data) // (width * height * 3)
    pictures = data[: count * width * height * 3].reshape(count, height, width, 3)
    return pictures_hash(pictures, times_s=np.arange(count) / rate_hz, rate_hz=rate_hz)


def still_hash(path: Path) -> DenseFrames:
    """Hash a still image (an upright JPEG) as one frame at t=0."""
    from PIL import Image

    with Image.open(path) as image:
        image.draft("RGB", (DENSE_MAX_SIDE_PX * 2, DENSE_MAX_SIDE_PX * 2))
        rgb = image.convert("RGB")
    rgb.thumbnail((DENSE_MAX_SIDE_PX, DENSE_MAX_SIDE_PX))
    return pictures_hash(np.asarray(rgb)[np.newaxis], times_s=np.zeros(1), rate_hz=0.0)


def frames_pack(frames: np.ndarray) -> bytes:
    """Return frames as the bytes stored in the database."""
    return np.ascontiguousarray(frames, dtype=FRAME_DTYPE).tobytes()


def frames_unpack(data: bytes | memoryview) -> np.ndarray:
    """Return the frames stored as bytes."""
    return np.frombuffer(bytes(data), dtype=FRAME_DTYPE)
