"""Generate test footage with ffmpeg's lavfi sources (through ffmpeg-python)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import ffmpeg

# Visually distinct sources: every boundary between two of them is a hard cut.
_STANDARD_MP4_TAGS = {"creation_time", "location", "title", "comment"}
SHOT_SOURCES = ("testsrc2", "mandelbrot", "smptehdbars", "cellauto", "rgbtestsrc", "life", "testsrc")


def shots_clip(
    path: Path,
    *,
    shot_s: float = 2.0,
    sources: Sequence[str] = SHOT_SOURCES[:4],
    size: str = "320x240",
    frame_rates: Sequence[int] | None = None,
    audio: bool = True,
    noise: bool = True,
    bitrate: str = "600k",
    preset: str = "veryfast",
) -> Path:
    """Write an H.264 MP4 made of one shot per source; cuts fall at multiples of shot_s.

    Different ``frame_rates`` per shot make a variable-frame-rate file. A long clip is quicker
    to make with ``preset="ultrafast"``; a high bitrate then keeps it as slow to decode.
    """
    rates = list(frame_rates or [25] * len(sources))
    shots = [
        ffmpeg.input(f"{source}=s={size}:r={rate}", f="lavfi", t=shot_s).video.filter("setsar", "1")
        for source, rate in zip(sources, rates, strict=True)
    ]
    video = ffmpeg.concat(*shots, v=1, a=0)
    if noise:
        video = video.filter("noise", alls=6, allf="t")
    streams = [video]
    if audio:
        streams.append(ffmpeg.input(f"sine=frequency=440:duration={shot_s * len(sources)}", f="lavfi").audio)
    options = {"vcodec": "libx264", "pix_fmt": "yuv420p", "preset": preset, "b:v": bitrate, "fps_mode": "vfr"}
    if audio:
        options["acodec"] = "aac"
    ffmpeg.output(*streams, str(path), **options).overwrite_output().run(quiet=True)
    return path


def single_shot_clip(path: Path, *, duration_s: float = 2.0, size: str = "320x240", source: str = "testsrc2") -> Path:
    """Write a short single-shot clip without audio."""
    video = ffmpeg.input(f"{source}=s={size}:r=25", f="lavfi", t=duration_s)
    video.output(str(path), vcodec="libx264", pix_fmt="yuv420p", preset="veryfast").overwrite_output().run(quiet=True)
    return path


def with_metadata(source: Path, path: Path, tags: dict[str, str], *, rotate_deg: int | None = None) -> Path:
    """Copy source to path without re-encoding, adding global tags and a display rotation."""
    current = source
    items = list(tags.items())
    # ffmpeg-python takes each option once, so tags are added two per remux (-metadata, -metadata:g).
    batches = [items[i : i + 2] for i in range(0, len(items), 2)] or [[]]
    for index, batch in enumerate(batches):
        target = path if index == len(batches) - 1 else path.with_suffix(f".step{index}.mp4")
        options: dict[str, str] = {"c": "copy"}
        if any(name not in _STANDARD_MP4_TAGS for name, _ in batch):
            options["movflags"] = "use_metadata_tags"  # free-form keys such as make/model
        for key, (name, value) in zip(("metadata", "metadata:g"), batch, strict=False):
            options[key] = f"{name}={value}"
        if rotate_deg is not None and index == len(batches) - 1:
            options["metadata:s:v:0"] = f"rotate={rotate_deg}"
        ffmpeg.input(str(current)).output(str(target), **options).overwrite_output().run(quiet=True)
        current = target
    return path


def faststart_copy(source: Path, path: Path) -> Path:
    """Copy source to path without re-encoding, with the index (moov) before the media data.

    Cut short, such a file still opens, and its header still declares the whole length.
    """
    ffmpeg.input(str(source)).output(str(path), c="copy", movflags="+faststart").overwrite_output().run(quiet=True)
    return path


def truncated_copy(source: Path, path: Path, *, keep_fraction: float) -> Path:
    """Write the first keep_fraction of source's bytes to path, as a download cut short would."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def bit_flipped_copy(source: Path, path: Path, *, flips: int, seed: int = 7) -> Path:
    """Write source to path with flips bytes inverted in its last 90 %, where the media data lies."""
    data = bytearray(source.read_bytes())
    rng = random.Random(seed)  # noqa: S311 - reproducible damage, not security
    for _ in range(flips):
        data[rng.randrange(len(data) // 10, len(data))] ^= 0xFF
    path.write_bytes(bytes(data))
    return path
