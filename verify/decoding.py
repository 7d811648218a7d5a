"""What the keyframe pass really decoded, set against what the container declares.

A container's header can promise two minutes of video when the file holds six seconds of it (a
download cut short, a damaged copy). The header's figures are kept as metadata; these are the
figures a reviewer can rely on, and a ``partial`` signal says when the two disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from verify import ffmpeg
from verify.models import MediaItem, MediaMetadata

# Shortfalls within these bounds are rounding, edit lists and streams of slightly different
# lengths, not missing footage.
DURATION_TOLERANCE_S = 0.5
DURATION_TOLERANCE_FRACTION = 0.02
FRAME_TOLERANCE_FRAMES = 2
FRAME_TOLERANCE_FRACTION = 0.02
# Distinct decode messages kept per item; the count covers all of them.
MAX_STORED_ERRORS = 20


@dataclass(frozen=True)
class DecodeReport:
    """Declared and decoded duration and frame count, and the errors met on the way.

    ``decoded_frame_count`` is None in fast mode (only key frames are decoded there), and
    ``decoded_duration_s`` is None when decoding was stopped on purpose (the keyframe cap in
    fast mode), because then it says nothing about the file.
    """

    declared_duration_s: float | None
    declared_frame_count: int | None
    decoded_duration_s: float | None
    decoded_frame_count: int | None
    errors: tuple[ffmpeg.DecodeError, ...]
    duration_tolerance_s: float
    key_frames_only: bool = False

    @property
    def error_count(self) -> int:
        return sum(error.count for error in self.errors)

    @property
    def duration_short(self) -> bool:
        """Return whether clearly less time decoded than the container declares."""
        if self.declared_duration_s is None or self.decoded_duration_s is None:
            return False
        return self.declared_duration_s - self.decoded_duration_s > self.duration_tolerance_s

    @property
    def frames_short(self) -> bool:
        """Return whether clearly fewer frames decoded than the container declares."""
        if not self.declared_frame_count or self.decoded_frame_count is None:
            return False
        tolerance = max(FRAME_TOLERANCE_FRAMES, self.declared_frame_count * FRAME_TOLERANCE_FRACTION)
        return self.declared_frame_count - self.decoded_frame_count > tolerance

    @property
    def partial(self) -> bool:
        return self.duration_short or self.frames_short

    def stored_values(self) -> dict[str, object]:
        """Return the MediaMetadata fields this report fills."""
        return {
            "decoded_duration_s": self.decoded_duration_s,
            "decoded_frame_count": self.decoded_frame_count,
            "decode_error_count": self.error_count,
            "decode_errors": [
                {"message": error.message, "count": error.count} for error in self.errors[:MAX_STORED_ERRORS]
            ],
        }


def decode_report(
    *,
    declared_duration_s: float | None,
    declared_frame_count: int | None,
    decoded_end_s: float | None,
    decoded_frame_count: int | None,
    key_frame_times_s: list[float] | None,
    stopped_at_cap: bool,
    errors: list[ffmpeg.DecodeError],
) -> DecodeReport:
    """Return the report of one keyframe pass.

    ``key_frame_times_s`` is given in fast mode, where only key frames are decoded: the last
    one can lie up to a key-frame interval before the end, so the tolerance grows by the
    longest interval seen.
    """
    tolerance_s = max(DURATION_TOLERANCE_S, (declared_duration_s or 0.0) * DURATION_TOLERANCE_FRACTION)
    if key_frame_times_s:
        times = sorted(key_frame_times_s)
        tolerance_s += max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)
    return DecodeReport(
        declared_duration_s=declared_duration_s,
        declared_frame_count=declared_frame_count,
        decoded_duration_s=None if stopped_at_cap else decoded_end_s,
        decoded_frame_count=decoded_frame_count,
        errors=tuple(errors),
        duration_tolerance_s=tolerance_s,
        key_frames_only=key_frame_times_s is not None,
    )


def seconds_text(value: float) -> str:
    """Return a duration as people write it: "6.2 s", "120 s"."""
    return f"{value:.1f}".removesuffix(".0") + " s"


def partial_text(report: DecodeReport) -> str:
    """Return the sentence a reviewer reads about a partly decoded file."""
    if report.duration_short and report.declared_duration_s is not None and report.decoded_duration_s is not None:
        of_declared = (
            f"{seconds_text(report.decoded_duration_s)} of a declared {seconds_text(report.declared_duration_s)}"
        )
        decoded = f"key frames decoded up to {of_declared}" if report.key_frames_only else f"decoded {of_declared}"
    else:
        decoded = f"decoded {report.decoded_frame_count} of a declared {report.declared_frame_count} frames"
    return f"{decoded}; the file is truncated or damaged"


def decode_signals(report: DecodeReport) -> list[dict[str, str]]:
    """Return the signals of a keyframe pass: ``partial`` first, then ``decode_errors``."""
    found = []
    if report.partial:
        text = partial_text(report)
        found.append({"code": "partial", "title": text[0].upper() + text[1:], "evidence": _errors_text(report)})
    if report.error_count:
        found.append(
            {
                "code": "decode_errors",
                "title": f"ffmpeg reported {report.error_count} decode error{'s' if report.error_count != 1 else ''}",
                "evidence": "frames near them may be damaged or concealed; first: " + report.errors[0].message,
            }
        )
    return found


def _errors_text(report: DecodeReport) -> str:
    figures = []
    if report.declared_duration_s is not None:
        figures.append(f"the container declares {seconds_text(report.declared_duration_s)}")
    if report.declared_frame_count:
        figures.append(f"{report.declared_frame_count} frames")
    decoded = []
    if report.decoded_duration_s is not None:
        up_to = "key frames up to " if report.key_frames_only else ""
        decoded.append(up_to + seconds_text(report.decoded_duration_s))
    if report.decoded_frame_count is not None:
        decoded.append(f"{report.decoded_frame_count} frames")
    text = ", ".join(figures) or "the container declares no length"
    if decoded:
        text += "; ffmpeg decoded " + ", ".join(decoded)
    return text


def decoding_save(*, media_item: MediaItem, report: DecodeReport) -> None:
    """Store a keyframe pass's report on the item's metadata, its signals first.

    The metadata row is written wholesale before the pass, signals included, so prepending
    the decode signals here converges on a re-run.
    """
    metadata = MediaMetadata.objects.get(media_item=media_item)
    metadata.signals = [*decode_signals(report), *metadata.signals]
    for name, value in report.stored_values().items():
        setattr(metadata, name, value)
    metadata.save(update_fields=["signals", *MediaMetadata.DECODE_FIELDS])
