"""Separate video and audio streams of a post, joined into one original by stream copy.

yt-dlp downloads the streams as the platform serves them and runs no ffmpeg itself; the join is
built by ``verify.ffmpeg`` and run by its runner with the limits every ffmpeg run gets.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from verify import ffmpeg
from verify.fetching.ytdlp import Downloaded
from verify.safeguards import AnalysisFailure, input_limits, resource_limits

_MAX_DIAGNOSTICS_BYTES = 1024**2


def downloaded_file(download: Downloaded, *, workdir: Path) -> Path:
    """Return the one file a download stands for: the file itself, or its video and audio joined."""
    if download.audio_path is None:
        return download.path
    container = ffmpeg.streams_join_container(
        video_ext=download.path.suffix.lstrip("."), audio_ext=download.audio_path.suffix.lstrip(".")
    )
    out_dir = workdir / "joined"
    out_dir.mkdir(exist_ok=True)
    output = out_dir / f"{download.path.stem}.{container}"
    argv = ffmpeg.streams_join_argv(
        video=download.path, audio=download.audio_path, output=output, ffmpeg=settings.FFMPEG_BINARY,
        limits=input_limits(),
    )  # fmt: skip
    try:
        ffmpeg.run(
            argv,
            timeout_s=settings.VERIFY_FFMPEG_TIMEOUT_S,
            limits=resource_limits(),
            max_stdout_bytes=_MAX_DIAGNOSTICS_BYTES,
            max_stderr_bytes=_MAX_DIAGNOSTICS_BYTES,
        )
    except ffmpeg.FFmpegError as exc:
        raise AnalysisFailure(
            "unsupported_content",
            f"The post's separate video and audio ({' + '.join(download.format_ids)}) could not be joined "
            f"by stream copy: {exc} ({exc.stderr_tail.strip()[-300:]}).",
        ) from exc
    return output


def streams_merged(download: Downloaded) -> str:
    """Return which formats were joined for this download, or ""."""
    return " + ".join(download.format_ids) if download.audio_path is not None else ""
