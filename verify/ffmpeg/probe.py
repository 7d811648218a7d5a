"""Parse ffprobe's JSON into normalised facts: streams, dates, places and devices."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    altitude_m: float | None


@dataclass(frozen=True)
class ProbeResult:
    """Normalised facts about a media file; None wherever the file does not say."""

    container: str
    container_long_name: str
    duration_s: float | None
    bit_rate_bps: int | None
    has_video: bool
    has_audio: bool
    video_codec: str
    coded_width: int | None
    coded_height: int | None
    display_width: int | None
    display_height: int | None
    rotation_deg: int
    frame_rate_fps: float | None
    frame_count: int | None
    audio_codec: str
    audio_channels: int | None
    audio_sample_rate_hz: int | None
    creation_time: datetime | None
    creation_time_source: str
    location: Location | None
    location_source: str
    device_make: str
    device_model: str
    device_software: str
    encoder: str
    stream_count: int = 0
    video_duration_s: float | None = None  # the video stream's own, where an audio stream runs longer

    @property
    def latitude(self) -> float | None:
        return self.location.latitude if self.location else None

    @property
    def longitude(self) -> float | None:
        return self.location.longitude if self.location else None

    @property
    def altitude_m(self) -> float | None:
        return self.location.altitude_m if self.location else None


class ProbeParseError(ValueError):
    """ffprobe's answer does not describe a readable media file."""


def parse_probe_json(text: str) -> dict[str, Any]:
    """Return ffprobe's JSON answer as a dict; raise ProbeParseError if it holds an error."""
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ProbeParseError("ffprobe did not answer with JSON") from exc
    if not isinstance(data, dict):
        raise ProbeParseError("ffprobe did not answer with a JSON object")
    if "error" in data:
        raise ProbeParseError(str(data["error"].get("string", "unreadable file")))
    return data


# Where each normalised field may hide, most specific first.
CREATION_TIME_TAGS = ("com.apple.quicktime.creationdate", "creation_time", "date")
LOCATION_TAGS = ("com.apple.quicktime.location.ISO6709", "location", "location-eng")
MAKE_TAGS = ("com.apple.quicktime.make", "make", "com.android.manufacturer")
MODEL_TAGS = ("com.apple.quicktime.model", "model", "com.android.model")
SOFTWARE_TAGS = ("com.apple.quicktime.software", "software", "com.android.version")
# Muxers write these when a clock was never set; they are not dates anyone recorded.
PLACEHOLDER_DATES = (datetime(1904, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC))


def parse_probe(data: dict[str, Any]) -> ProbeResult:
    """Return the normalised facts in an ffprobe ``-show_format -show_streams`` answer."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next(
        (s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    tag_sources = _tag_sources(fmt, streams)

    rotation = _rotation_deg(video) if video else 0
    coded_width = as_int(video.get("width")) if video else None
    coded_height = as_int(video.get("height")) if video else None
    display_width, display_height = coded_width, coded_height
    if rotation in (90, 270):
        display_width, display_height = coded_height, coded_width

    creation_time, creation_source = _first_datetime(tag_sources)
    location, location_source = _first_location(tag_sources)
    encoder_value, _ = _first_tag(tag_sources, ("encoder",))
    make, _ = _first_tag(tag_sources, MAKE_TAGS)
    model, _ = _first_tag(tag_sources, MODEL_TAGS)
    software, _ = _first_tag(tag_sources, SOFTWARE_TAGS)

    return ProbeResult(
        container=str(fmt.get("format_name", "")),
        container_long_name=str(fmt.get("format_long_name", "")),
        duration_s=as_float(fmt.get("duration")) or (as_float(video.get("duration")) if video else None),
        bit_rate_bps=as_int(fmt.get("bit_rate")),
        has_video=video is not None,
        has_audio=audio is not None,
        video_codec=str(video.get("codec_name", "")) if video else "",
        coded_width=coded_width,
        coded_height=coded_height,
        display_width=display_width,
        display_height=display_height,
        rotation_deg=rotation,
        frame_rate_fps=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")) if video else None,
        frame_count=as_int(video.get("nb_frames")) if video else None,
        video_duration_s=as_float(video.get("duration")) if video else None,
        audio_codec=str(audio.get("codec_name", "")) if audio else "",
        audio_channels=as_int(audio.get("channels")) if audio else None,
        audio_sample_rate_hz=as_int(audio.get("sample_rate")) if audio else None,
        creation_time=creation_time,
        creation_time_source=creation_source,
        location=location,
        location_source=location_source,
        device_make=make,
        device_model=model,
        device_software=software,
        encoder=encoder_value,
        stream_count=len(streams),
    )


def _tag_sources(fmt: dict[str, Any], streams: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    sources = [("format", fmt.get("tags") or {})]
    sources += [(f"stream:{s.get('index', i)}", s.get("tags") or {}) for i, s in enumerate(streams)]
    return sources


def _first_tag(sources: list[tuple[str, dict[str, str]]], names: Sequence[str]) -> tuple[str, str]:
    for name in names:
        for where, tags in sources:
            for key, value in tags.items():
                if key.lower() == name.lower() and str(value).strip():
                    return str(value).strip(), f"{where}:{key}"
    return "", ""


def _first_datetime(sources: list[tuple[str, dict[str, str]]]) -> tuple[datetime | None, str]:
    for name in CREATION_TIME_TAGS:
        for where, tags in sources:
            for key, value in tags.items():
                if key.lower() != name.lower():
                    continue
                parsed = parse_tag_datetime(str(value))
                if parsed is not None and parsed not in PLACEHOLDER_DATES:
                    return parsed, f"{where}:{key}"
    return None, ""


def _first_location(sources: list[tuple[str, dict[str, str]]]) -> tuple[Location | None, str]:
    for name in LOCATION_TAGS:
        for where, tags in sources:
            for key, value in tags.items():
                if key.lower() == name.lower():
                    parsed = parse_iso6709(str(value))
                    if parsed is not None:
                        return parsed, f"{where}:{key}"
    return None, ""


def parse_tag_datetime(value: str) -> datetime | None:
    """Return the instant in an ISO 8601 metadata tag, or None if it is not one.

    A value without a UTC offset is taken as UTC, which is what MP4 ``creation_time`` means.
    """
    text = value.strip()
    if not text:
        return None
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)  # +0200 -> +02:00 (QuickTime style)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


_ISO6709 = re.compile(
    r"^(?P<lat>[+-]\d+(?:\.\d+)?)(?P<lon>[+-]\d+(?:\.\d+)?)(?P<alt>[+-]\d+(?:\.\d+)?)?(?:CRS[^/]*)?/?$"
)


def parse_iso6709(value: str) -> Location | None:
    """Return the point in an ISO 6709 string such as ``+50.4253+036.8949/``, or None.

    None also for ``+00.0000+000.0000``: the placeholder of a device without a position.
    """
    match = _ISO6709.match(value.strip())
    if not match:
        return None
    latitude = _iso6709_angle(match["lat"], degree_digits=2)
    longitude = _iso6709_angle(match["lon"], degree_digits=3)
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return None
    if latitude == 0 and longitude == 0:  # "null island": what a receiver without a fix writes
        return None
    altitude = float(match["alt"]) if match["alt"] else None
    return Location(latitude=latitude, longitude=longitude, altitude_m=altitude)


def _iso6709_angle(text: str, *, degree_digits: int) -> float | None:
    # ISO 6709 allows degrees (DD.D), degrees+minutes (DDMM.M) and degrees+minutes+seconds.
    sign = -1.0 if text[0] == "-" else 1.0
    whole, _, fraction = text[1:].partition(".")
    fraction_value = float(f"0.{fraction}") if fraction else 0.0
    extra = len(whole) - degree_digits
    if extra == 0:
        return sign * (int(whole) + fraction_value)
    if extra == 2:
        degrees, minutes = int(whole[:degree_digits]), int(whole[degree_digits:]) + fraction_value
        return sign * (degrees + minutes / 60)
    if extra == 4:
        degrees = int(whole[:degree_digits])
        minutes = int(whole[degree_digits : degree_digits + 2])
        seconds = int(whole[degree_digits + 2 :]) + fraction_value
        return sign * (degrees + minutes / 60 + seconds / 3600)
    return None


def _rotation_deg(video: dict[str, Any]) -> int:
    """Return the clockwise rotation a player applies, in degrees: 0, 90, 180 or 270."""
    for side_data in video.get("side_data_list") or []:
        if "rotation" in side_data:
            # The display matrix angle is counter-clockwise; players rotate the other way.
            return int(round(-float(side_data["rotation"]))) % 360
    rotate_tag = (video.get("tags") or {}).get("rotate")
    if rotate_tag is not None:
        try:
            return int(round(float(rotate_tag))) % 360
        except ValueError:
            return 0
    return 0


def as_int(value: Any) -> int | None:
    """Return value as an int, or None where ffprobe wrote nothing usable."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    """Return value as a finite float, or None where ffprobe wrote nothing usable."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _rate(value: Any) -> float | None:
    if not value or "/" not in str(value):
        return as_float(value)
    numerator, denominator = str(value).split("/", 1)
    num, den = as_float(numerator), as_float(denominator)
    if not num or not den:
        return None
    return round(num / den, 3)
