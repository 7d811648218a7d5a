"""Read a file's tags with exiftool and normalise them: capture time, place, device, editing traces.

ffprobe stays the authority on streams, codecs and durations; exiftool reads what ffprobe does
not: EXIF, XMP, IPTC, MakerNotes and QuickTime Keys/UserData. One long-lived ``-stay_open``
exiftool runs per worker process (``verify.exif_reader``). ``parse_exif`` turns its
``-json -G1 -n`` answer into ``ExifFacts`` and is a pure function, tested on recorded answers.

Absent means absent: GPS 0/0, an empty GPS block and placeholder dates are not values, and a
time without a zone stays local wall time with the zone unknown, never silently UTC.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from verify.ffmpeg import Location


@dataclass(frozen=True)
class EditStep:
    action: str
    software: str
    when: str


@dataclass(frozen=True)
class ExifFacts:
    """What exiftool says about a file, normalised; empty wherever the file does not say."""

    creation_time: datetime | None = None
    creation_time_source: str = ""
    capture_time_local: str = ""
    capture_time_zone: str = ""
    capture_time_source: str = ""
    location: Location | None = None
    location_source: str = ""
    location_accuracy_m: float | None = None
    location_dop: float | None = None
    image_direction_deg: float | None = None
    device_make: str = ""
    device_model: str = ""
    device_software: str = ""
    lens_model: str = ""
    body_serial_number: str = ""
    author: str = ""
    copyright: str = ""
    creator_tool: str = ""
    caption: str = ""
    edit_history: list[dict[str, str]] = field(default_factory=list)
    exif_orientation: int | None = None

    @property
    def latitude(self) -> float | None:
        return self.location.latitude if self.location else None

    @property
    def longitude(self) -> float | None:
        return self.location.longitude if self.location else None

    @property
    def altitude_m(self) -> float | None:
        return self.location.altitude_m if self.location else None


# Capture time, most specific first: (tag of the wall time, tag of its zone, tag of its sub-seconds).
CAPTURE_TIME_TAGS = (
    ("ExifIFD:DateTimeOriginal", "ExifIFD:OffsetTimeOriginal", "ExifIFD:SubSecTimeOriginal"),
    ("Keys:CreationDate", "", ""),
    ("UserData:DateTimeOriginal", "", ""),
    ("XMP-exif:DateTimeOriginal", "", ""),
    ("XMP-photoshop:DateCreated", "", ""),
    ("ExifIFD:CreateDate", "ExifIFD:OffsetTimeDigitized", "ExifIFD:SubSecTimeDigitized"),
)
# QuickTime's mvhd CreateDate is UTC by specification.
UTC_TIME_TAGS = ("QuickTime:CreateDate", "QuickTime:MediaCreateDate")
MAKE_TAGS = ("IFD0:Make", "Keys:Make", "UserData:Make", "XMP-tiff:Make")
MODEL_TAGS = ("IFD0:Model", "Keys:Model", "UserData:Model", "XMP-tiff:Model")
SOFTWARE_TAGS = ("IFD0:Software", "Keys:Software", "UserData:Software", "*:FirmwareVersion")
LENS_TAGS = ("ExifIFD:LensModel", "XMP-exifEX:LensModel", "XMP-aux:Lens", "*:LensModel")
SERIAL_TAGS = ("ExifIFD:SerialNumber", "XMP-exifEX:BodySerialNumber", "XMP-aux:SerialNumber", "*:SerialNumber")
AUTHOR_TAGS = ("IFD0:Artist", "XMP-dc:Creator", "IPTC:By-line", "Keys:Author", "UserData:Author")
COPYRIGHT_TAGS = ("IFD0:Copyright", "XMP-dc:Rights", "IPTC:CopyrightNotice", "Keys:Copyright")
CAPTION_TAGS = ("IPTC:Caption-Abstract", "XMP-dc:Description", "IFD0:ImageDescription", "Keys:Description")
# Camera clocks that were never set write these; nobody recorded them.
PLACEHOLDER_WALL_TIMES = frozenset(
    {"1904-01-01T00:00:00", "1970-01-01T00:00:00", "1980-01-01T00:00:00", "2000-01-01T00:00:00"}
)

_DATE = re.compile(
    r"^(?P<y>\d{4})[:-](?P<mo>\d{2})[:-](?P<d>\d{2})[ T](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?"
    r"(?:\.(?P<frac>\d+))?\s*(?P<zone>Z|[+-]\d{2}:?\d{2})?$"
)


def _lookup(tags: dict[str, Any], name: str) -> tuple[Any, str]:
    if name.startswith("*:"):
        suffix = name[1:]
        for key, value in tags.items():
            if key.endswith(suffix) and _present(value):
                return value, key
        return None, ""
    value = tags.get(name)
    return (value, name) if _present(value) else (None, "")


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, list):
        return any(_present(item) for item in value)
    text = str(value).strip()
    return bool(text) and not text.startswith("(Binary data")


def _first_text(tags: dict[str, Any], names: tuple[str, ...]) -> tuple[str, str]:
    for name in names:
        value, key = _lookup(tags, name)
        if value is not None:
            text = "; ".join(str(v).strip() for v in value) if isinstance(value, list) else str(value).strip()
            return text, key
    return "", ""


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_zone(text: str) -> timezone | None:
    """Return the UTC offset in ``+03:00``, ``-0500`` or ``Z``, or None if it is not one."""
    match = re.fullmatch(r"\s*(?:(Z)|([+-])(\d{2}):?(\d{2}))\s*", text or "")
    if not match:
        return None
    if match[1]:
        return UTC
    minutes = int(match[3]) * 60 + int(match[4])
    if minutes > 14 * 60:
        return None
    return timezone((-1 if match[2] == "-" else 1) * timedelta(minutes=minutes))


def parse_wall_time(text: str) -> tuple[datetime, timezone | None] | None:
    """Return the wall time in an EXIF/XMP/QuickTime date and its zone if it names one.

    None for what is not a date, for ``0000:00:00 00:00:00`` and for clocks never set.
    """
    match = _DATE.match(str(text).strip())
    if not match:
        return None
    try:
        wall = datetime(
            int(match["y"]), int(match["mo"]), int(match["d"]), int(match["h"]), int(match["mi"]), int(match["s"] or 0)
        )
    except ValueError:
        return None
    if wall.isoformat() in PLACEHOLDER_WALL_TIMES or wall.year < 1900:
        return None
    if match["frac"]:
        wall = wall.replace(microsecond=int(match["frac"][:6].ljust(6, "0")))
    zone = parse_zone(match["zone"]) if match["zone"] else None
    return wall, zone


def _with_subseconds(wall: datetime, subsec: Any) -> datetime:
    digits = re.sub(r"\D", "", str(subsec or ""))
    if not digits or wall.microsecond:
        return wall
    return wall.replace(microsecond=int(digits[:6].ljust(6, "0")))


def _zone_text(zone: timezone) -> str:
    offset = zone.utcoffset(None)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _capture_time(tags: dict[str, Any]) -> tuple[str, str, str, datetime | None, str]:
    """Return (local wall time, its zone or "", source, instant or None, source of the instant)."""
    for time_tag, zone_tag, subsec_tag in CAPTURE_TIME_TAGS:
        value, key = _lookup(tags, time_tag)
        parsed = parse_wall_time(str(value)) if value is not None else None
        if parsed is None:
            continue
        wall, zone = parsed
        source = key
        if zone is None and zone_tag:
            zone_value, zone_key = _lookup(tags, zone_tag)
            zone = parse_zone(str(zone_value)) if zone_value is not None else None
            if zone is not None:
                source += f"+{zone_key.split(':')[-1]}"
        if subsec_tag:
            subsec, subsec_key = _lookup(tags, subsec_tag)
            if subsec is not None and not wall.microsecond:
                wall = _with_subseconds(wall, subsec)
                source += f"+{subsec_key.split(':')[-1]}"
        local = wall.isoformat()
        if zone is not None:
            return local, _zone_text(zone), source, wall.replace(tzinfo=zone), source
        gps_time, gps_source = _gps_time(tags)
        if gps_time is not None:
            return local, "", source, gps_time, gps_source
        return local, "", source, None, ""
    gps_time, gps_source = _gps_time(tags)
    if gps_time is not None:
        return "", "", "", gps_time, gps_source
    for name in UTC_TIME_TAGS:
        value, key = _lookup(tags, name)
        parsed = parse_wall_time(str(value)) if value is not None else None
        if parsed is not None:
            wall, zone = parsed
            return "", "", "", wall.replace(tzinfo=zone or UTC), key
    return "", "", "", None, ""


def _gps_time(tags: dict[str, Any]) -> tuple[datetime | None, str]:
    date_value, _ = _lookup(tags, "GPS:GPSDateStamp")
    time_value, _ = _lookup(tags, "GPS:GPSTimeStamp")
    if date_value is None or time_value is None:
        return None, ""
    parts = str(time_value).strip().split(":")
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        return None, ""
    parsed = parse_wall_time(f"{str(date_value).strip()} 00:00:00") if seconds < 61 else None
    if parsed is None or hours > 23 or minutes > 59:
        return None, ""
    instant = parsed[0].replace(tzinfo=UTC) + timedelta(hours=hours, minutes=minutes, seconds=seconds)
    return instant, "GPS:GPSDateStamp+GPSTimeStamp"


def _location(tags: dict[str, Any]) -> tuple[Location | None, str]:
    for lat_tag, lon_tag, alt_tag in (
        ("Composite:GPSLatitude", "Composite:GPSLongitude", "Composite:GPSAltitude"),
        ("XMP-exif:GPSLatitude", "XMP-exif:GPSLongitude", "XMP-exif:GPSAltitude"),
    ):
        latitude, lat_key = _lookup(tags, lat_tag)
        longitude, _ = _lookup(tags, lon_tag)
        lat, lon = _number(latitude), _number(longitude)
        if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
            continue
        if lat == 0 and lon == 0:  # "null island": a receiver without a fix, not a place
            return None, ""
        altitude = _number(_lookup(tags, alt_tag)[0])
        if altitude is None and alt_tag.startswith("Composite:"):  # exiftool composes it only with a ref
            altitude = _number(_lookup(tags, "GPS:GPSAltitude")[0])
        if altitude is not None and str(tags.get("GPS:GPSAltitudeRef", "")).strip() == "1":
            altitude = -abs(altitude)  # below sea level; exiftool -n leaves the number unsigned
        return Location(latitude=lat, longitude=lon, altitude_m=altitude), _location_source(tags, lat_key)
    return None, ""


def _location_source(tags: dict[str, Any], key: str) -> str:
    # Composite values are exiftool's reading of the tags below; name the tags the file holds.
    for name in ("GPS:GPSLatitude", "Keys:GPSCoordinates", "UserData:GPSCoordinates", "ItemList:GPSCoordinates"):
        if name in tags:
            return f"{name}+GPSLongitude" if name == "GPS:GPSLatitude" else name
    return key


def _edit_history(tags: dict[str, Any]) -> list[dict[str, str]]:
    def as_list(name: str) -> list[str]:
        value, _ = _lookup(tags, name)
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    actions = as_list("XMP-xmpMM:HistoryAction")
    agents = as_list("XMP-xmpMM:HistorySoftwareAgent")
    whens = as_list("XMP-xmpMM:HistoryWhen")
    steps = []
    for index, action in enumerate(actions):
        steps.append(
            {
                "action": action,
                "software": agents[index] if index < len(agents) else "",
                "when": whens[index] if index < len(whens) else "",
            }
        )
    return steps


def parse_exif(tags: dict[str, Any]) -> ExifFacts:
    """Return the normalised facts in exiftool's ``-json -G1 -n`` answer for one file."""
    local, zone, local_source, instant, instant_source = _capture_time(tags)
    location, location_source = _location(tags)
    accuracy, _ = _lookup(tags, "GPS:GPSHPositioningError")
    dop, _ = _lookup(tags, "GPS:GPSDOP")
    direction, _ = _lookup(tags, "GPS:GPSImgDirection")
    orientation = _number(_lookup(tags, "IFD0:Orientation")[0])
    return ExifFacts(
        creation_time=instant,
        creation_time_source=instant_source,
        capture_time_local=local,
        capture_time_zone=zone,
        capture_time_source=local_source,
        location=location,
        location_source=location_source,
        location_accuracy_m=_number(accuracy) if location else None,
        location_dop=_number(dop) if location else None,
        image_direction_deg=_number(direction) if location else None,
        device_make=_first_text(tags, MAKE_TAGS)[0],
        device_model=_first_text(tags, MODEL_TAGS)[0],
        device_software=_first_text(tags, SOFTWARE_TAGS)[0],
        lens_model=_first_text(tags, LENS_TAGS)[0],
        body_serial_number=_first_text(tags, SERIAL_TAGS)[0],
        author=_first_text(tags, AUTHOR_TAGS)[0],
        copyright=_first_text(tags, COPYRIGHT_TAGS)[0],
        creator_tool=_first_text(tags, ("XMP-xmp:CreatorTool",))[0],
        caption=_first_text(tags, CAPTION_TAGS)[0],
        edit_history=_edit_history(tags),
        exif_orientation=int(orientation) if orientation in (1, 2, 3, 4, 5, 6, 7, 8) else None,
    )
