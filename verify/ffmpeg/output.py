"""Parse what ffmpeg writes while it works: chosen frames, scene scores, progress, decode errors, refusals."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from verify.ffmpeg.probe import as_float, as_int


@dataclass(frozen=True)
class SelectedFrame:
    """A frame the keyframe pass wrote: its file, PTS-based time and picture type."""

    path: Path
    timestamp_s: float
    pict_type: str


_SHOWINFO = re.compile(r"\bn:\s*(?P<n>\d+)\s+pts:\s*(?P<pts>-?\d+)\s+pts_time:(?P<t>\S+).*?\btype:(?P<type>\w)")


def parse_selected_frames(*, stderr: str, out_dir: Path) -> list[SelectedFrame]:
    """Return the frames a ``keyframes_argv`` run wrote, in output order.

    Times come from each frame's PTS as printed by showinfo, so they stay right on variable
    frame rate video.
    """
    infos = [m for line in stderr.splitlines() if "showinfo" in line and (m := _SHOWINFO.search(line))]
    files = sorted(out_dir.glob("frame_*.jpg"))
    frames = []
    for info, path in zip(infos, files, strict=False):
        timestamp = as_float(info["t"])
        if timestamp is not None:
            frames.append(SelectedFrame(path=path, timestamp_s=timestamp, pict_type=info["type"]))
    return frames


def parse_scene_scores(text: str) -> list[tuple[float, float]]:
    """Return (time in seconds, scene score) for every frame in a ``metadata=mode=print`` file."""
    scores: list[tuple[float, float]] = []
    timestamp: float | None = None
    for line in text.splitlines():
        if line.startswith("frame:"):
            match = re.search(r"pts_time:(\S+)", line)
            timestamp = as_float(match.group(1)) if match else None
        elif line.startswith("lavfi.scene_score=") and timestamp is not None:
            score = as_float(line.split("=", 1)[1])
            if score is not None:
                scores.append((timestamp, score))
            timestamp = None
    return scores


def parse_progress_out_time_s(line: str) -> float | None:
    """Return the position in seconds from one ``-progress`` line, or None for other keys."""
    key, _, value = line.partition("=")
    if key.strip() != "out_time_us":
        return None
    micros = as_int(value.strip())
    return micros / 1_000_000 if micros is not None and micros >= 0 else None


def parse_progress_end_s(stdout: str) -> float | None:
    """Return the last position a ``-progress`` stream reported, in seconds: how far decoding got."""
    positions = [p for line in stdout.splitlines() if (p := parse_progress_out_time_s(line)) is not None]
    return positions[-1] if positions else None


@dataclass(frozen=True)
class DecodeError:
    """One message ffmpeg logged while reading a file, with how often it came."""

    message: str
    count: int


# A line logged with ``-loglevel level+...``: optional "[name @ 0x...]" contexts, then "[level]".
_LEVELLED = re.compile(
    r"^(?P<contexts>(?:\[[^]]+ @ 0x[0-9a-f]+\] )*)\[(?P<level>panic|fatal|error|warning)\] (?P<msg>.*)$"
)
_CONTEXT_NAME = re.compile(r"\[([^]@]+?) @ 0x[0-9a-f]+\]")
_NUMBERS = re.compile(r"-?(?:0x[0-9a-f]+|\d+)")


def parse_decode_errors(stderr: str, *, input_path: Path) -> list[DecodeError]:
    """Return what ffmpeg reported as damage while decoding, in order of first appearance.

    That is every line at level error or worse, and the warnings that say a decoded frame is
    corrupt. The run must log with ``level`` and ``repeat`` flags (``keyframes_argv`` does), so
    each line carries its level and repeats are not folded. The server's path of the input
    becomes "the file".
    """
    first: dict[str, str] = {}
    counts: dict[str, int] = {}
    for line in stderr.splitlines():
        match = _LEVELLED.match(line)
        if match is None or (match["level"] == "warning" and "corrupt" not in match["msg"]):
            continue
        message = match["msg"].strip().replace(f"file:{input_path}", "the file").replace(str(input_path), "the file")
        names = _CONTEXT_NAME.findall(match["contexts"])
        if names:
            message = f"{names[-1]}: {message}"
        # "partial file" at offset 0x41fb6 and at 0x410f6 is one kind of damage.
        kind = _NUMBERS.sub("#", message)
        first.setdefault(kind, message)
        counts[kind] = counts.get(kind, 0) + 1
    return [DecodeError(first[kind], count) for kind, count in counts.items()]


_STREAM_LIMIT = re.compile(r"Number of streams exceeds max_streams parameter \((?P<limit>\d+)\)")
_REFUSED_CODEC = re.compile(r"Codec \((?P<codec>[\w-]+)\) not on whitelist")
_REFUSED_FORMAT = re.compile(r"\[(?P<format>[\w,]+) @ [^]]+\] (?:\[\w+\] )?Format not on whitelist")
_REFUSED_PICTURE = re.compile(r"Picture size (?P<w>\d+)x(?P<h>\d+) (?:is invalid|exceeds specified max pixel count)")


@dataclass(frozen=True)
class Refusal:
    """A safety limit ffmpeg reported on stderr while it read a file."""

    kind: str  # "streams", "codec", "format" or "picture_size"
    detail: str


def parse_refusals(stderr: str) -> list[Refusal]:
    """Return the allow-list and size refusals in ffmpeg's stderr, in the order they appear."""
    refusals = []
    for line in stderr.splitlines():
        if match := _STREAM_LIMIT.search(line):
            refusals.append(Refusal("streams", match["limit"]))
        elif match := _REFUSED_CODEC.search(line):
            refusals.append(Refusal("codec", match["codec"]))
        elif match := _REFUSED_FORMAT.search(line):
            refusals.append(Refusal("format", match["format"]))
        elif match := _REFUSED_PICTURE.search(line):
            refusals.append(Refusal("picture_size", f"{match['w']}x{match['h']}"))
    return refusals


def parse_version(banner: str) -> str:
    """Return the version string from ffmpeg's ``-version`` banner, e.g. ``5.1.9-0+deb12u1``."""
    match = re.search(r"version (\S+)", banner)
    return match.group(1) if match else ""


_MAX_VOLUME = re.compile(r"\] max_volume: (-?(?:\d+(?:\.\d+)?|inf)) dB")


def parse_max_volume_db(stderr: str) -> float | None:
    """Return the loudest sample ``volumedetect`` reported (dBFS; -inf for digital silence), or None."""
    found = _MAX_VOLUME.findall(stderr)
    return float(found[-1]) if found else None
