"""Where the sun was: azimuth, elevation and shadows for a place and a time, for chronolocation.

A reviewer compares the shadows in footage with where the sun stood at the claimed place and
time. Positions come from ``astral`` (NOAA's solar equations; the elevation is apparent, with
atmospheric refraction, as NOAA's calculator gives it). Times are always aware: a place's zone
comes from its coordinates (``timezonefinder``, offline) unless the caller names one, and a day
runs from local midnight to the next local midnight, so a day with a daylight-saving change has
23 or 25 hours.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from astral import Observer
from astral import sun as astral_sun

# The sun's upper limb touches the horizon: its centre 50 arc minutes below it, refraction included.
HORIZON_ELEVATION_DEG = -0.833
CHART_STEP_MIN = 10
_SCAN_STEP_MIN = 1
CARDINALS = {"north": 0.0, "east": 90.0, "south": 180.0, "west": 270.0}


class SunInputError(ValueError):
    """A place or time the sun cannot be computed for; the message says which value and why."""


@dataclass(frozen=True)
class Place:
    """A point on Earth and the time zone its clocks keep."""

    latitude: float
    longitude: float
    zone: str

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


@dataclass(frozen=True)
class SunPosition:
    """The sun seen from a place at one moment, and the shadow a vertical pole casts."""

    at: datetime
    azimuth_deg: float  # clockwise from true north
    elevation_deg: float  # above the horizon, with refraction

    @property
    def above_horizon(self) -> bool:
        return self.elevation_deg > 0

    @property
    def shadow_azimuth_deg(self) -> float | None:
        """Return the direction the shadow points (clockwise from north); None while the sun is down."""
        return (self.azimuth_deg + 180.0) % 360.0 if self.above_horizon else None

    @property
    def shadow_length_per_m(self) -> float | None:
        """Return the shadow's length per metre of height, 1 / tan(elevation); None while the sun is down."""
        if not self.above_horizon:
            return None
        return 1.0 / math.tan(math.radians(self.elevation_deg))


@dataclass(frozen=True)
class SunDay:
    """The sun over one local day at a place: samples for a chart, sunrise, sunset, shadow hours."""

    place: Place
    day: date
    samples: list[SunPosition]
    sunrise: datetime | None
    sunset: datetime | None
    polar: str  # "day" (the sun never sets), "night" (it never rises) or ""
    # Local times at which shadows point due north, east, south and west (while the sun is up).
    shadow_times: dict[str, list[datetime]] = field(default_factory=dict)

    @property
    def length_h(self) -> float:
        start = datetime.combine(self.day, time(0), tzinfo=self.place.tzinfo)
        end = datetime.combine(self.day + timedelta(days=1), time(0), tzinfo=self.place.tzinfo)
        return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600

    @property
    def highest(self) -> SunPosition:
        return max(self.samples, key=lambda s: s.elevation_deg)


@functools.cache
def _zone_finder() -> object:
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


def place_at(*, latitude: float, longitude: float, zone: str = "") -> Place:
    """Return the place, with its zone looked up from the coordinates unless one is given."""
    if not -90.0 <= latitude <= 90.0:
        raise SunInputError(f"Latitude {latitude:g} is outside -90..90.")
    if not -180.0 <= longitude <= 180.0:
        raise SunInputError(f"Longitude {longitude:g} is outside -180..180.")
    if not zone:
        zone = _zone_finder().timezone_at(lng=longitude, lat=latitude) or ""  # type: ignore[attr-defined]
    if not zone:
        # Open sea far from any land: nautical time from the longitude.
        hours = round(longitude / 15)
        zone = "Etc/GMT" if hours == 0 else f"Etc/GMT{-hours:+d}"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SunInputError(f"{zone!r} is not a known time zone (IANA names such as Europe/Kyiv).") from exc
    return Place(latitude=latitude, longitude=longitude, zone=zone)


def _observer(place: Place) -> Observer:
    return Observer(latitude=place.latitude, longitude=place.longitude)


def sun_position(*, place: Place, at: datetime) -> SunPosition:
    """Return the sun's azimuth and elevation at place at the aware moment ``at``."""
    if at.tzinfo is None:
        raise SunInputError("The time needs a zone: a time without one could be any of 26 hours.")
    observer = _observer(place)
    local = at.astimezone(place.tzinfo)
    return SunPosition(
        at=local,
        azimuth_deg=astral_sun.azimuth(observer, local),
        elevation_deg=astral_sun.elevation(observer, local),
    )


def local_moment(*, place: Place, day: date, clock: time) -> datetime:
    """Return the aware moment a local clock showed on day at place.

    In the hour clocks skip in spring the time does not exist, and in the hour repeated in
    autumn it is ambiguous: both are refused rather than guessed.
    """
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=place.tzinfo, fold=0)
    second = naive.replace(tzinfo=place.tzinfo, fold=1)
    if first.utcoffset() != second.utcoffset():
        round_trip = first.astimezone(UTC).astimezone(place.tzinfo).replace(tzinfo=None)
        if round_trip != naive:
            raise SunInputError(f"{clock:%H:%M} did not exist on {day} in {place.zone}: clocks skipped it.")
        raise SunInputError(f"{clock:%H:%M} happened twice on {day} in {place.zone}; give the UTC offset instead.")
    return first


def _azimuth_off(position: SunPosition, *, target_deg: float) -> float:
    return (position.azimuth_deg - target_deg + 180.0) % 360.0 - 180.0


def _scan(place: Place, start_utc: datetime, end_utc: datetime, step_min: int) -> list[SunPosition]:
    steps = int((end_utc - start_utc).total_seconds() // (step_min * 60))
    return [sun_position(place=place, at=start_utc + timedelta(minutes=i * step_min)) for i in range(steps + 1)]


def _crossings(
    samples: list[SunPosition], value: Callable[[SunPosition], float], level: float
) -> list[tuple[datetime, bool]]:
    """Return (moment, rising) where value(sample) - level changes sign, linearly interpolated."""
    found = []
    for a, b in zip(samples, samples[1:], strict=False):
        va, vb = value(a) - level, value(b) - level
        if va == 0 or (va < 0) == (vb < 0) or abs(va - vb) > 90:
            continue
        fraction = va / (va - vb)
        found.append((a.at + (b.at - a.at) * fraction, vb > va))
    return found


def _horizon_event(event: Callable[..., datetime], place: Place, day: date) -> datetime | None:
    # NOAA's sunrise and sunset: the centre 0.833 degrees below the horizon, refraction included.
    try:
        moment = event(_observer(place), day, place.tzinfo)
    except ValueError:  # astral: the sun stays above or below the horizon all day
        return None
    return moment if moment.date() == day else None


def sun_day(*, place: Place, day: date) -> SunDay:
    """Return the sun over the local day at place: chart samples, sunrise, sunset and shadow hours."""
    start = datetime.combine(day, time(0), tzinfo=place.tzinfo).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=place.tzinfo).astimezone(UTC)
    fine = _scan(place, start, end, _SCAN_STEP_MIN)
    sunrise = _horizon_event(astral_sun.sunrise, place, day)
    sunset = _horizon_event(astral_sun.sunset, place, day)
    polar = ""
    if sunrise is None and sunset is None:
        elevations = [sample.elevation_deg for sample in fine]
        if min(elevations) > HORIZON_ELEVATION_DEG:
            polar = "day"
        elif max(elevations) < HORIZON_ELEVATION_DEG:
            polar = "night"
    shadow_times = {}
    for name, direction in CARDINALS.items():
        sun_side = (direction + 180.0) % 360.0
        moments = [at for at, _ in _crossings(fine, functools.partial(_azimuth_off, target_deg=sun_side), 0.0)]
        shadow_times[name] = [
            at.astimezone(place.tzinfo) for at in moments if sun_position(place=place, at=at).above_horizon
        ]
    samples = fine[:: CHART_STEP_MIN // _SCAN_STEP_MIN]
    if samples[-1].at != fine[-1].at:
        samples.append(fine[-1])
    return SunDay(
        place=place,
        day=day,
        samples=samples,
        sunrise=sunrise,
        sunset=sunset,
        polar=polar,
        shadow_times=shadow_times,
    )


def compass_point(azimuth_deg: float | None) -> str:
    """Return the nearest of 16 compass points for an azimuth, e.g. "SSW"; "" for None."""
    if azimuth_deg is None:
        return ""
    points = "N NNE NE ENE E ESE SE SSE S SSW SW WSW W WNW NW NNW".split()
    return points[round(azimuth_deg / 22.5) % 16]
