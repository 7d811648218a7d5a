"""Camera-like test footage: one continuous shot panned and zoomed over a real photograph, and its reposts.

The photographs ship inside scikit-image (``tests.photos``). A shot moves a virtual camera over
one of them with ffmpeg's ``zoompan`` (a slow pan, a slow zoom, a small hand shake) and adds
sensor noise, as a phone filming one place does: no hard cuts, few I-frames. ``repost`` turns
such a shot into the copies it becomes on its way through platforms and messaging apps.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from tests.photos import photograph

SIZE = (960, 540)
FPS = 30


@dataclass(frozen=True)
class Pan:
    """A camera move over a photograph: zoom and the window's centre (0..1 of the free range), start to end."""

    zoom: tuple[float, float] = (1.25, 1.6)
    x: tuple[float, float] = (0.15, 0.7)
    y: tuple[float, float] = (0.3, 0.6)
    shake_px: float = 3.0


def _lerp(span: tuple[float, float], frames: int) -> str:
    start, end = span
    return f"({start}+({end - start})*on/{frames})"


def photo_shot(  # noqa: B008
    path: Path, *, photo: str, pan: Pan = Pan(), duration_s: float = 5.0, noise: int = 6,
    size: tuple[int, int] = SIZE,
) -> Path:  # fmt: skip
    """Write an H.264 clip of one continuous shot panned and zoomed over a scikit-image photograph."""
    frames = round(duration_s * FPS)
    source = path.with_suffix(".source.png")
    image = photograph(photo)
    # A 16:9 window of the photograph, scaled up so the zoomed window still holds ~720 lines.
    height = min(image.height, round(image.width * 9 / 16))
    top = (image.height - height) // 2
    image.crop((0, top, image.width, top + height)).resize((1920, 1080), Image.Resampling.BICUBIC).save(source)
    shake_x = f"{pan.shake_px}*sin(on*1.9)+{pan.shake_px / 2}*sin(on*0.37)"
    shake_y = f"{pan.shake_px}*cos(on*1.3)"
    chain = (
        f"zoompan=z='{_lerp(pan.zoom, frames)}'"
        f":x='(iw-iw/zoom)*{_lerp(pan.x, frames)}+{shake_x}'"
        f":y='(ih-ih/zoom)*{_lerp(pan.y, frames)}+{shake_y}'"
        f":d={frames}:s={size[0]}x{size[1]}:fps={FPS},noise=alls={noise}:allf=t,setsar=1"
    )
    # One decoded photograph, all the frames from it (d=frames): looping the input would decode
    # the 1920x1080 picture again for every frame, five times the work.
    _ffmpeg("-i", str(source), "-vf", chain, "-frames:v", str(frames), "-b:v", "4M", *_H264, str(path))
    source.unlink()
    return path


_H264 = ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-an")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


# Copies of an original on its way through platforms. Each is (filter chain on the decoded video
# or a special kind, extra encoder options, time in the original of the copy's t=0).
SEPIA = ".393:.769:.189:0:.349:.686:.168:0:.272:.534:.131"
REPOSTS: dict[str, tuple[str, dict[str, Any], float]] = {
    "reencoded": ("", {"b:v": "250k"}, 0.0),
    "480p": ("scale=-2:480", {}, 0.0),
    "360p": ("scale=-2:360", {"b:v": "500k"}, 0.0),
    "pillarbox_4_3": ("scale=640:360,pad=640:480:0:60", {}, 0.0),
    "letterbox_9_16": ("scale=360:202,pad=360:640:0:219", {}, 0.0),
    "grey": ("hue=s=0", {}, 0.0),
    "sepia": (f"colorchannelmixer={SEPIA}", {}, 0.0),
    # A channel bug in the corner (about 2 % of the frame) and a large one (about 15 %).
    "logo_small": ("drawbox=x=iw*0.84:y=ih*0.05:w=iw*0.13:h=ih*0.13:color=white@0.85:t=fill,"
                   "drawbox=x=iw*0.87:y=ih*0.08:w=iw*0.07:h=ih*0.07:color=red@0.9:t=fill", {}, 0.0),
    "logo_large": ("drawbox=x=iw*0.58:y=ih*0.03:w=iw*0.39:h=ih*0.39:color=white@0.85:t=fill,"
                   "drawbox=x=iw*0.65:y=ih*0.1:w=iw*0.25:h=ih*0.25:color=0x1040a0@0.9:t=fill", {}, 0.0),
    "caption": ("drawbox=x=0:y=ih*0.8:w=iw:h=ih*0.2:color=black@0.75:t=fill,"
                "drawbox=x=iw*0.05:y=ih*0.86:w=iw*0.6:h=ih*0.05:color=white@0.9:t=fill", {}, 0.0),
    "rotated": ("rotate", {}, 0.0),
    "mirrored": ("hflip", {}, 0.0),
    "excerpt_3s": ("", {"ss": 1.5, "t": 3.0}, 1.5),
    "trimmed": ("", {"ss": 1.0, "t": 4.3}, 1.0),
    "fps25": ("fps=25", {}, 0.0),
    "vfr_drops": ("select='lt(mod(n,10),7)'", {"fps_mode": "vfr"}, 0.0),
    "crop10": ("crop=iw*0.9:ih*0.9,scale=960:540", {}, 0.0),
    "still": ("still", {}, 0.0),
    "still_jpeg60": ("still_jpeg60", {}, 0.0),
}  # fmt: skip
STILL_AT_S = 2.0


def repost(original: Path, path: Path, name: str) -> Path:
    """Write the copy ``name`` (a key of ``REPOSTS``) of an original shot; stills get their own suffix."""
    chain, options, _ = REPOSTS[name]
    if chain in ("still", "still_jpeg60"):
        png = path.with_suffix(".png")
        _ffmpeg("-ss", f"{STILL_AT_S}", "-i", str(original), "-frames:v", "1", str(png))
        if chain == "still":
            return png
        jpeg = path.with_suffix(".jpg")
        with Image.open(png) as image:
            image.convert("RGB").save(jpeg, "JPEG", quality=60)
        png.unlink()
        return jpeg
    if chain == "rotate":
        # A display matrix, not re-encoded pixels: players (and ffmpeg) show it turned by 90°.
        _ffmpeg("-i", str(original), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
        return path
    seek = [arg for key in ("ss", "t") if key in options for arg in (f"-{key}", f"{options[key]}")]
    extra = [arg for key, value in options.items() if key not in ("ss", "t") for arg in (f"-{key}", f"{value}")]
    filters = ["-vf", chain] if chain else []
    bitrate = [] if "b:v" in options else ["-b:v", "1500k"]
    _ffmpeg(*seek, "-i", str(original), *filters, *bitrate, *extra, *_H264, str(path))
    return path


def repost_shift_s(name: str) -> float:
    """Return the time in the original of the copy's t=0."""
    return REPOSTS[name][2]
