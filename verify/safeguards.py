"""Limits on untrusted files: what ffmpeg may open and spend, and the failures named for users.

A file that passes a limit is refused with a code and a sentence a reviewer can act on, before
anything is decoded where the container declares it, or from ffmpeg's own refusal otherwise.
"""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings

from verify import ffmpeg


class AnalysisFailure(Exception):
    """The file cannot be analysed. Recorded on the item as a failure and never retried."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def input_limits() -> ffmpeg.InputLimits:
    """Return the demuxing limits every ffmpeg and ffprobe run gets."""
    return ffmpeg.InputLimits(
        max_streams=settings.VERIFY_MAX_STREAMS,
        probe_size_bytes=settings.VERIFY_FFMPEG_PROBESIZE_BYTES,
        analyze_duration_s=settings.VERIFY_FFMPEG_ANALYZEDURATION_S,
        max_pixels=settings.VERIFY_MAX_FRAME_PIXELS,
    )


def resource_limits() -> ffmpeg.ResourceLimits:
    """Return the CPU, memory and output limits of every ffmpeg and ffprobe process."""
    return ffmpeg.ResourceLimits(
        cpu_time_s=settings.VERIFY_FFMPEG_CPU_TIME_S,
        address_space_bytes=settings.VERIFY_FFMPEG_ADDRESS_SPACE_BYTES,
        output_file_bytes=settings.VERIFY_FFMPEG_OUTPUT_FILE_BYTES,
    )


def probe_gates(probe: ffmpeg.ProbeResult) -> None:
    """Refuse, before anything is decoded, a file whose declared shape passes a limit."""
    if probe.stream_count > settings.VERIFY_MAX_STREAMS:
        raise _too_many_streams(settings.VERIFY_MAX_STREAMS)
    width, height = probe.coded_width or 0, probe.coded_height or 0
    if width * height > settings.VERIFY_MAX_FRAME_PIXELS:
        raise _dimensions_exceed_limit(f"{width}x{height}")
    fps = probe.frame_rate_fps
    if fps is not None and fps > settings.VERIFY_MAX_FRAME_RATE_FPS:
        raise AnalysisFailure(
            "frame_rate_exceeds_limit",
            f"The video declares {fps:g} frames per second; the limit is {settings.VERIFY_MAX_FRAME_RATE_FPS:g}.",
        )
    duration = probe.duration_s
    if duration is not None and duration > settings.VERIFY_MAX_DURATION_S:
        raise AnalysisFailure(
            "duration_exceeds_limit",
            f"The file declares a duration of {duration:.0f} s; the limit is {settings.VERIFY_MAX_DURATION_S:.0f} s.",
        )


def _too_many_streams(limit: int) -> AnalysisFailure:
    return AnalysisFailure("too_many_streams", f"The file has more than {limit} streams, the most this service reads.")


def _dimensions_exceed_limit(size: str) -> AnalysisFailure:
    limit = settings.VERIFY_MAX_FRAME_PIXELS
    return AnalysisFailure(
        "dimensions_exceed_limit",
        f"The video declares frames of {size.replace('x', ' x ')} pixels; the limit is {limit:,} pixels per frame.",
    )


def refusals_raise(refusals: list[ffmpeg.Refusal]) -> None:
    """Raise the failure that names the first limit ffmpeg refused the file for."""
    for refusal in refusals:
        if refusal.kind == "streams":
            raise _too_many_streams(int(refusal.detail))
        if refusal.kind == "picture_size":
            raise _dimensions_exceed_limit(refusal.detail)
        if refusal.kind == "codec":
            raise AnalysisFailure(
                "unsupported_codec",
                f"The file uses the {refusal.detail} codec, which this service does not decode.",
            )
        if refusal.kind == "format":
            raise AnalysisFailure(
                "unsupported_format",
                f"The file contains or points to {refusal.detail} content (a playlist or another container "
                "inside it), which this service never opens.",
            )


def resource_limit_raise(exc: ffmpeg.FFmpegError) -> None:
    """Raise a failure naming the resource limit that stopped ffmpeg, if one did."""
    if exc.output_exceeded:
        raise AnalysisFailure("resource_limit_exceeded", "ffmpeg wrote more diagnostics than allowed for one file.")
    # With soft == hard limits the kernel ends a process over its CPU time with SIGKILL.
    reasons: dict[int | None, str] = {
        signal.SIGXCPU.value: "used more CPU time than allowed",
        signal.SIGKILL.value: "was stopped by the kernel: it used more CPU time or memory than allowed",
        signal.SIGXFSZ.value: "tried to write a file larger than allowed",
    }
    if exc.killed_by_signal in reasons:
        raise AnalysisFailure("resource_limit_exceeded", f"Decoding the file {reasons[exc.killed_by_signal]}.")


def strings_truncate(value: Any, *, max_chars: int) -> tuple[Any, bool]:
    """Return value with every string (keys too) cut to max_chars, and whether any was cut."""
    if isinstance(value, str):
        return (value[:max_chars], True) if len(value) > max_chars else (value, False)
    if isinstance(value, dict):
        cut = False
        result = {}
        for key, item in value.items():
            new_key, key_cut = strings_truncate(key, max_chars=max_chars)
            result[new_key], item_cut = strings_truncate(item, max_chars=max_chars)
            cut = cut or key_cut or item_cut
        return result, cut
    if isinstance(value, list):
        pairs = [strings_truncate(item, max_chars=max_chars) for item in value]
        return [item for item, _ in pairs], any(cut for _, cut in pairs)
    return value, False


def fields_fit(model: Any, values: dict[str, Any], *, truncated: bool) -> dict[str, Any]:
    """Return values with strings cut to their column's max_length, plus the values_truncated flag."""
    fitted = {}
    for name, value in values.items():
        max_length = model._meta.get_field(name).max_length
        if isinstance(value, str) and max_length is not None and len(value) > max_length:
            value, truncated = value[:max_length], True
        fitted[name] = value
    return {**fitted, "values_truncated": truncated}
