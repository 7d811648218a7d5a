"""Sun position against published reference values, in both hemispheres, near the poles and across clock changes."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from verify import sun

# NREL Solar Position Algorithm, Reda & Andreas (2004), NREL/TP-560-34302, the worked example of
# Table A5.1: Golden, Colorado, 17 October 2003 12:30:30 local time (UTC-7), latitude 39.742476,
# longitude -105.1786: topocentric zenith 50.11162 deg (elevation 39.88838), azimuth 194.34024 deg.
# NOAA's calculator implements the same solar equations to about 0.01 deg.
GOLDEN = (39.742476, -105.1786)
GOLDEN_AT = datetime(2003, 10, 17, 12, 30, 30, tzinfo=timezone(timedelta(hours=-7)))
GOLDEN_AZIMUTH_DEG = 194.34024
GOLDEN_ELEVATION_DEG = 90 - 50.11162

SYDNEY = (-33.8688, 151.2093)
# Sunrise and sunset in Sydney on 21 December 2024, Australian Eastern Daylight Time (UTC+11):
# 05:41 and 20:05 to the minute, as NOAA's general solar position equations (NOAA Global
# Monitoring Laboratory, "General Solar Position Calculations") give them: 05:40.9 and 20:05.1.
# `_noaa_minutes` below recomputes them from those equations, independently of astral.
SYDNEY_SUNRISE = time(5, 41)
SYDNEY_SUNSET = time(20, 5)
# At the December solstice the sun's declination is -23.44 deg, so it culminates at
# 90 - |latitude - declination| = 79.57 deg above Sydney, due north.
SYDNEY_NOON_ELEVATION_DEG = 90 - abs(-33.8688 - -23.44)

LONGYEARBYEN = (
    78.2232,
    15.6267,
)  # Svalbard: polar night mid-November to late January, midnight sun late April to late August
MCMURDO = (-77.8463, 166.6681)  # Antarctica: midnight sun around the December solstice
LONDON = (51.5074, -0.1278)


def _noaa_minutes(latitude: float, longitude: float, day_of_year: int, *, rising: bool, utc_offset_h: float) -> float:
    """Return sunrise or sunset in local minutes after midnight by NOAA's general solar position equations."""
    g = 2 * math.pi / 366 * (day_of_year - 1)  # fractional year of a leap year, at noon UTC
    eqtime = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g) - 0.014615 * math.cos(2 * g)
                       - 0.040849 * math.sin(2 * g))  # fmt: skip
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g) - 0.006758 * math.cos(2 * g)
            + 0.000907 * math.sin(2 * g) - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))  # fmt: skip
    lat = math.radians(latitude)
    hour_angle = math.degrees(
        math.acos(math.cos(math.radians(90.833)) / (math.cos(lat) * math.cos(decl)) - math.tan(lat) * math.tan(decl))
    )
    utc = 720 - 4 * (longitude + (hour_angle if rising else -hour_angle)) - eqtime
    return (utc + utc_offset_h * 60) % 1440


def test_sydney_reference_agrees_with_noaa_equations() -> None:
    day_of_year = date(2024, 12, 21).timetuple().tm_yday
    for rising, expected in ((True, SYDNEY_SUNRISE), (False, SYDNEY_SUNSET)):
        minutes = _noaa_minutes(*SYDNEY, day_of_year, rising=rising, utc_offset_h=11)
        assert abs(minutes - (expected.hour * 60 + expected.minute)) <= 1.0


def _minutes(moment: datetime | None, expected: time) -> float:
    assert moment is not None
    return abs((moment.hour * 60 + moment.minute + moment.second / 60) - (expected.hour * 60 + expected.minute))


def test_sun_position_matches_the_published_spa_example() -> None:
    place = sun.place_at(latitude=GOLDEN[0], longitude=GOLDEN[1])

    position = sun.sun_position(place=place, at=GOLDEN_AT)

    assert place.zone == "America/Denver"
    assert position.azimuth_deg == pytest.approx(GOLDEN_AZIMUTH_DEG, abs=0.02)
    assert position.elevation_deg == pytest.approx(GOLDEN_ELEVATION_DEG, abs=0.02)
    # The shadow points away from the sun, 1/tan(39.89 deg) = 1.197 m per metre of height.
    assert position.shadow_azimuth_deg == pytest.approx(14.34, abs=0.02)
    assert position.shadow_length_per_m == pytest.approx(1 / math.tan(math.radians(GOLDEN_ELEVATION_DEG)), abs=0.001)
    assert sun.compass_point(position.shadow_azimuth_deg) == "NNE"


def test_sun_day_southern_hemisphere_summer_solstice() -> None:
    place = sun.place_at(latitude=SYDNEY[0], longitude=SYDNEY[1])

    day = sun.sun_day(place=place, day=date(2024, 12, 21))

    assert place.zone == "Australia/Sydney"
    assert _minutes(day.sunrise, SYDNEY_SUNRISE) <= 1.5
    assert _minutes(day.sunset, SYDNEY_SUNSET) <= 1.5
    assert day.sunrise is not None and day.sunrise.utcoffset() == timedelta(hours=11)
    assert day.highest.elevation_deg == pytest.approx(SYDNEY_NOON_ELEVATION_DEG, abs=0.15)
    # The sun culminates in the north, so at noon shadows point south, never north.
    assert day.shadow_times["north"] == []
    assert [at.strftime("%H") for at in day.shadow_times["south"]] == ["12"]
    assert day.polar == ""


@pytest.mark.parametrize(
    ("where", "when", "polar"),
    [
        (LONGYEARBYEN, date(2024, 12, 21), "night"),
        (LONGYEARBYEN, date(2024, 6, 21), "day"),
        (MCMURDO, date(2024, 12, 21), "day"),
        (MCMURDO, date(2024, 6, 21), "night"),
    ],
)
def test_sun_day_near_the_poles_says_polar_day_or_night(where: tuple[float, float], when: date, polar: str) -> None:
    place = sun.place_at(latitude=where[0], longitude=where[1])

    day = sun.sun_day(place=place, day=when)

    assert day.polar == polar
    assert day.sunrise is None and day.sunset is None
    assert all(s.elevation_deg > 0 for s in day.samples) if polar == "day" else day.highest.elevation_deg < 0


def test_sun_day_across_the_spring_clock_change() -> None:
    place = sun.place_at(latitude=LONDON[0], longitude=LONDON[1])

    before = sun.sun_day(place=place, day=date(2024, 3, 30))
    change = sun.sun_day(place=place, day=date(2024, 3, 31))

    assert (before.length_h, change.length_h) == (24.0, 23.0)
    assert change.samples[-1].at.astimezone(UTC) - change.samples[0].at.astimezone(UTC) == timedelta(hours=23)
    assert change.samples[-1].at.hour == 0 and change.samples[-1].at.day == 1
    # Clocks went forward an hour; the morning came about two minutes earlier by the sun.
    assert before.sunrise is not None and change.sunrise is not None
    shift_min = (change.sunrise.hour * 60 + change.sunrise.minute) - (before.sunrise.hour * 60 + before.sunrise.minute)
    assert 56 <= shift_min <= 60
    assert change.sunrise.utcoffset() == timedelta(hours=1)
    assert sun.sun_day(place=place, day=date(2024, 10, 27)).length_h == 25.0


def test_local_moment_refuses_skipped_and_repeated_clock_times() -> None:
    place = sun.place_at(latitude=LONDON[0], longitude=LONDON[1])

    with pytest.raises(sun.SunInputError, match="did not exist"):
        sun.local_moment(place=place, day=date(2024, 3, 31), clock=time(1, 30))
    with pytest.raises(sun.SunInputError, match="happened twice"):
        sun.local_moment(place=place, day=date(2024, 10, 27), clock=time(1, 30))
    assert sun.local_moment(place=place, day=date(2024, 7, 1), clock=time(12, 0)).utcoffset() == timedelta(hours=1)


def test_place_at_refuses_bad_coordinates_and_zones() -> None:
    with pytest.raises(sun.SunInputError, match="Latitude"):
        sun.place_at(latitude=91, longitude=0)
    with pytest.raises(sun.SunInputError, match="time zone"):
        sun.place_at(latitude=50, longitude=30, zone="Mars/Olympus")
    assert sun.place_at(latitude=50.45, longitude=30.52).zone == "Europe/Kyiv"
    assert sun.place_at(latitude=50.45, longitude=30.52, zone="UTC").zone == "UTC"
