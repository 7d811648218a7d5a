"""The reference clip: generated from ffmpeg's lavfi sources, cached by its parameters."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import ffmpeg as ffmpeg_python

from verify import ffmpeg

_GENERATE_TIMEOUT_S = 3600.0
_PROBE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ClipSpec:
    """The parameters of a reference clip; the hard cuts fall at multiples of ``shot_s``."""

    size: str = "1280x720"
    shots: int = 8
    shot_s: float = 15.0
    fps: int = 30
    video_bitrate: str = "2500k"

    @property
    def cuts_s(self) -> list[float]:
        return [i * self.shot_s for i in range(1, self.shots)]

    @property
    def duration_s(self) -> float:
        return self.shots * self.shot_s

    def describe(self) -> str:
        """Return a one-line description for the report."""
        return (
            f"{self.size} H.264 {self.video_bitrate}bit/s + AAC, {self.fps} fps, "
            f"{self.shots} shots × {self.shot_s:g} s (cuts at {', '.join(f'{c:g}' for c in self.cuts_s)} s)"
        )

    def argv(self, path: Path, *, ffmpeg_binary: str) -> list[str]:
        """Return the argv that writes this clip to path."""
        return ffmpeg.reference_clip_argv(
            path,
            ffmpeg=ffmpeg_binary,
            shots=self.shots,
            shot_s=self.shot_s,
            size=self.size,
            fps=self.fps,
            video_bitrate=self.video_bitrate,
        )


SMOKE_CLIP = ClipSpec(size="320x240", shots=3, shot_s=4.0, fps=25, video_bitrate="500k")


def reference_clip_cached(spec: ClipSpec, *, cache_dir: Path, ffmpeg_binary: str) -> tuple[Path, bool]:
    """Return the clip for spec, generating it first unless the cache holds it; and whether it was cached.

    The file name carries a digest of the exact generating argv (and so of the ffmpeg binary's
    name and every parameter), so a change to either generates a new clip instead of reusing a
    stale one. The clip is written under a temporary name and renamed into place, so an
    interrupted run never leaves a truncated clip behind.
    """
    cache_dir = cache_dir.resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    placeholder = Path("/reference.mp4")
    digest = hashlib.sha256("\0".join(spec.argv(placeholder, ffmpeg_binary=ffmpeg_binary)).encode()).hexdigest()
    path = cache_dir / f"reference-{spec.size}-{spec.shots}x{spec.shot_s:g}s-{digest[:12]}.mp4"
    if path.exists():
        return path, True
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial.mp4")
    try:
        ffmpeg.run(spec.argv(partial, ffmpeg_binary=ffmpeg_binary), timeout_s=_GENERATE_TIMEOUT_S)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path, False


def iframe_times_s(path: Path, *, ffprobe_binary: str) -> list[float]:
    """Return the presentation time of every I-frame of the first video stream.

    Only key frames are decoded (``-skip_frame nokey``), so this costs about as much as reading
    the file.
    """
    argv = [
        ffprobe_binary, "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey",
        "-show_entries", "frame=pts_time,pict_type", "-of", "csv=p=0", f"file:{path.resolve()}",
    ]  # fmt: skip
    result = ffmpeg.run(argv, timeout_s=_PROBE_TIMEOUT_S)
    times = []
    for line in result.stdout.splitlines():
        pts_time, _, pict_type = line.strip().partition(",")
        if pict_type.strip(",") == "I" and pts_time not in ("", "N/A"):
            times.append(float(pts_time))
    return times


def full_decode_argv(path: Path, *, ffmpeg_binary: str) -> list[str]:
    """Return argv for ffmpeg's plain full decode, ``ffmpeg -i clip -f null -``."""
    stream = ffmpeg_python.input(f"file:{path.resolve()}").output("-", f="null")
    return list(stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error").compile(cmd=ffmpeg_binary))


def iframe_extraction_argv(path: Path, *, ffmpeg_binary: str, out_dir: Path) -> list[str]:
    """Return argv for ffmpeg's own I-frame extraction to JPEG at the analysis' JPEG quality."""
    stream = ffmpeg_python.input(f"file:{path.resolve()}", skip_frame="nokey").output(
        str(out_dir / "iframe_%06d.jpg"), f="image2", fps_mode="vfr", **{"q:v": 2}
    )
    return list(stream.global_args("-nostdin", "-hide_banner", "-loglevel", "error").compile(cmd=ffmpeg_binary))
