"""Where a case's footage was claimed or recorded to be, and where the sun stood there and then.

The place is the checklist's location coordinates when a reviewer has set them, else the GPS
position in the metadata of the case's earliest media item that has one. The moments are the
capture times the media metadata records, each with its zone. The day charted is the claimed
date, or the local date of the first capture time when nothing is claimed. Nothing here saves
anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from verify import sun
from verify.models import MediaMetadata
from workflows.models import Case, ChecklistItem


@dataclass(frozen=True)
class ClaimedPlace:
    """A position for the sun, and where it came from."""

    latitude: float
    longitude: float
    source: str


@dataclass(frozen=True)
class CaptureMoment:
    """A capture time recorded in one media item's metadata, aware."""

    media_item_id: int
    at: datetime
    source: str


@dataclass(frozen=True)
class CaseSun:
    """The sun for a case: its place, the day's course and the position at each capture time."""

    place: sun.Place | None
    place_source: str
    day: sun.SunDay | None
    day_source: str
    positions: list[tuple[CaptureMoment, sun.SunPosition]] = field(default_factory=list)
    missing: str = ""  # why nothing could be computed


def case_claimed_place(*, case: Case) -> ClaimedPlace | None:
    """Return the position to compute the sun for: the checklist's location, else metadata GPS."""
    item = ChecklistItem.objects.filter(
        case=case, key=ChecklistItem.Key.LOCATION, latitude__isnull=False, longitude__isnull=False
    ).first()
    if item is not None and item.latitude is not None and item.longitude is not None:
        return ClaimedPlace(item.latitude, item.longitude, "the checklist's location")
    metadata = (
        MediaMetadata.objects.filter(media_item__case=case, latitude__isnull=False, longitude__isnull=False)
        .order_by("media_item__uploaded_at", "media_item_id")
        .first()
    )
    if metadata is not None and metadata.latitude is not None and metadata.longitude is not None:
        return ClaimedPlace(
            metadata.latitude, metadata.longitude, f"GPS in the metadata of media #{metadata.media_item_id}"
        )
    return None


def _capture_moment(metadata: MediaMetadata) -> CaptureMoment | None:
    if metadata.capture_time_local and metadata.capture_time_zone:
        try:
            at = datetime.fromisoformat(f"{metadata.capture_time_local}{metadata.capture_time_zone}")
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None:
            source = metadata.capture_time_source or "capture time"
            return CaptureMoment(metadata.media_item_id, at, source)
    if metadata.creation_time is not None:
        return CaptureMoment(
            metadata.media_item_id, metadata.creation_time, metadata.creation_time_source or "creation time"
        )
    return None


def case_capture_moments(*, case: Case) -> list[CaptureMoment]:
    """Return the capture times recorded in the case's media metadata, earliest submission first."""
    found = []
    for metadata in MediaMetadata.objects.filter(media_item__case=case).order_by("media_item__uploaded_at", "id"):
        moment = _capture_moment(metadata)
        if moment is not None:
            found.append(moment)
    return found


def case_sun(*, case: Case) -> CaseSun:
    """Return the sun at the case's place on its claimed date and at each recorded capture time."""
    claimed = case_claimed_place(case=case)
    if claimed is None:
        return CaseSun(
            place=None,
            place_source="",
            day=None,
            day_source="",
            missing="No place yet: set the location's coordinates in the checklist, or submit media with GPS.",
        )
    try:
        place = sun.place_at(latitude=claimed.latitude, longitude=claimed.longitude)
    except sun.SunInputError as exc:
        return CaseSun(place=None, place_source=claimed.source, day=None, day_source="", missing=str(exc))
    moments = case_capture_moments(case=case)
    positions = [(moment, sun.sun_position(place=place, at=moment.at)) for moment in moments]
    day: date | None = case.claimed_date
    day_source = "the claimed date"
    if day is None and moments:
        day, day_source = (
            moments[0].at.astimezone(place.tzinfo).date(),
            f"the capture date of media #{moments[0].media_item_id}",
        )
    return CaseSun(
        place=place,
        place_source=claimed.source,
        day=sun.sun_day(place=place, day=day) if day is not None else None,
        day_source=day_source if day is not None else "",
        positions=positions,
    )


def _when(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return round(value, digits) if value is not None else None


def sun_position_body(position: sun.SunPosition) -> dict[str, Any]:
    """Return the numbers of one sun position, as the API answers them."""
    return {
        "at": _when(position.at),
        "azimuth_deg": _rounded(position.azimuth_deg),
        "elevation_deg": _rounded(position.elevation_deg),
        "above_horizon": position.above_horizon,
        "shadow_azimuth_deg": _rounded(position.shadow_azimuth_deg),
        "shadow_direction": sun.compass_point(position.shadow_azimuth_deg),
        "shadow_length_per_m": _rounded(position.shadow_length_per_m, 3),
    }


def sun_day_body(day: sun.SunDay) -> dict[str, Any]:
    """Return the numbers of a day's chart, as the API answers them."""
    return {
        "date": day.day.isoformat(),
        "length_h": day.length_h,
        "sunrise": _when(day.sunrise),
        "sunset": _when(day.sunset),
        "polar": day.polar or None,
        "highest": sun_position_body(day.highest),
        "shadow_times": {name: [_when(at) for at in moments] for name, moments in day.shadow_times.items()},
        "samples": [
            {"at": _when(s.at), "azimuth_deg": _rounded(s.azimuth_deg), "elevation_deg": _rounded(s.elevation_deg)}
            for s in day.samples
        ],
    }


def place_body(place: sun.Place, *, source: str, zone_source: str = "from the coordinates") -> dict[str, Any]:
    """Return where the sun was computed for, and where its position and zone came from."""
    return {
        "latitude": place.latitude,
        "longitude": place.longitude,
        "zone": place.zone,
        "zone_source": zone_source,
        "source": source,
    }


def case_sun_body(found: CaseSun) -> dict[str, Any]:
    """Return the API's answer for a case's sun."""
    return {
        "place": place_body(found.place, source=found.place_source) if found.place is not None else None,
        "missing": found.missing or None,
        "day_source": found.day_source or None,
        "day": sun_day_body(found.day) if found.day is not None else None,
        "capture_times": [
            {"media_item": moment.media_item_id, "source": moment.source, **sun_position_body(position)}
            for moment, position in found.positions
        ],
    }
