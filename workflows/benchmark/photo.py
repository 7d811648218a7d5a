"""Time the whole analysis of a 12 MP phone photo: exiftool, Content Credentials, decode, hashes, rows."""

from __future__ import annotations

import statistics
from pathlib import Path

from PIL import Image

from verify.models import MediaItem
from workflows.benchmark.analysis import PoolChild, analysis_round
from workflows.benchmark.report import Check, Report, Timing
from workflows.benchmark.sandbox import sandbox_user

PHOTO_SIZE = (4032, 3024)  # a 12 MP phone camera
PHOTO_LIMIT_S = 1.5
_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769


def reference_photo(path: Path) -> Path:
    """Write a 12 MP JPEG with a phone's EXIF (camera, capture time with zone, GPS), unless it exists."""
    if path.exists():
        return path
    width, height = PHOTO_SIZE
    # Detail at every scale, as in a photograph: a fractal under sensor-like noise.
    base = Image.effect_mandelbrot((width, height), (-2.0, -1.2, 1.0, 1.2), 256)
    noise = Image.effect_noise((width, height), 40)
    picture = Image.merge("RGB", (base, Image.blend(base, noise, 0.5), noise))
    exif = Image.Exif()
    exif.update({0x010F: "Apple", 0x0110: "iPhone 13", 0x0131: "16.5", 0x0112: 6})
    exif.get_ifd(_EXIF_IFD).update({0x9003: "2023:06:01 14:03:22", 0x9011: "+03:00"})
    exif.get_ifd(_GPS_IFD).update({1: "N", 2: (50.0, 27.0, 0.36), 3: "E", 4: (30.0, 31.0, 24.24), 5: b"\x00", 6: 179.0})
    picture.save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


def photo_benchmark(photo: Path, *, rounds: int, enforce_timing: bool) -> Report:
    """Analyse the reference photo in a pool child, once to warm up and then ``rounds`` times."""
    user, _ = sandbox_user("benchmark-photo")
    child = PoolChild()
    try:
        analysis_round(photo, child=child, user=user, mode=MediaItem.Mode.FULL)  # starts exiftool, imports
        measured = [analysis_round(photo, child=child, user=user, mode=MediaItem.Mode.FULL) for _ in range(rounds)]
    finally:
        child.close()
    failed = [r.error for r in measured if r.state != MediaItem.State.SUCCEEDED]
    seconds = [r.seconds for r in measured]
    median_s = statistics.median(seconds)
    report = Report()
    report.context.append(f"reference photo: {photo} ({PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, {photo.stat().st_size:,} bytes)")
    report.timings.append(
        Timing(
            name="analysis of a 12 MP photo",
            seconds=seconds,
            cpu_seconds=[r.cpu_seconds for r in measured],
            note="exiftool, Content Credentials, decode upright, derived image, hashes, contact sheet, rows",
        )
    )
    report.checks.append(
        Check(
            target="photo analysis",
            what="median wall time of the whole analysis of a 12 MP JPEG",
            measured=f"{median_s:.2f} s" + (f" (failed: {failed[0]})" if failed else ""),
            limit=f"< {PHOTO_LIMIT_S} s",
            met=(median_s < PHOTO_LIMIT_S and not failed) if enforce_timing else None,
        )
    )
    return report
