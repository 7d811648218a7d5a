"""The desk's sun panel: the day's chart as SVG, the position at each capture time, and the free form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from verify import sun
from workflows import chronolocation
from workflows.models import Case

_WIDTH, _HEIGHT = 720, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 44, 24, 36
_PLOT_W = _WIDTH - _LEFT - _RIGHT
_PLOT_H = _HEIGHT - _TOP - _BOTTOM


def _x(day: sun.SunDay, moment: datetime) -> float:
    # Elapsed real time, in UTC: on a clock-change day local wall times are an hour off.
    elapsed_s = (moment.astimezone(UTC) - day.samples[0].at.astimezone(UTC)).total_seconds()
    return _LEFT + _PLOT_W * elapsed_s / (day.length_h * 3600)


def _y_elevation(elevation_deg: float) -> float:
    return _TOP + _PLOT_H * (90 - elevation_deg) / 180


def _y_azimuth(azimuth_deg: float) -> float:
    return _TOP + _PLOT_H * (360 - azimuth_deg) / 360


def _polylines(day: sun.SunDay) -> tuple[str, list[str]]:
    elevation = " ".join(f"{_x(day, s.at):.1f},{_y_elevation(s.elevation_deg):.1f}" for s in day.samples)
    # The azimuth wraps from 360 to 0 where the sun passes north: break the line there.
    azimuth_runs: list[list[str]] = [[]]
    previous: float | None = None
    for s in day.samples:
        if previous is not None and abs(s.azimuth_deg - previous) > 180:
            azimuth_runs.append([])
        azimuth_runs[-1].append(f"{_x(day, s.at):.1f},{_y_azimuth(s.azimuth_deg):.1f}")
        previous = s.azimuth_deg
    return elevation, [" ".join(run) for run in azimuth_runs if len(run) > 1]


def sun_chart_svg(day: sun.SunDay) -> SafeString:
    """Return the day's chart: elevation and azimuth against local time, sunrise, sunset, shadow hours."""
    elevation, azimuth_runs = _polylines(day)
    horizon_y = _y_elevation(0)
    hour_ticks = [
        (f"{_x(day, s.at):.1f}", s.at.strftime("%H:%M"))
        for s in day.samples
        if s.at.minute == 0 and s.at.hour % 3 == 0 and s is not day.samples[-1]
    ]
    events = [(day.sunrise, "sunrise"), (day.sunset, "sunset")]
    event_lines = format_html_join(
        "",
        '<line class="sun-event" x1="{0}" x2="{0}" y1="{1}" y2="{2}"/>'
        '<text class="sun-event-label" x="{0}" y="{3}" text-anchor="middle">{4} {5}</text>',
        (
            (f"{_x(day, at):.1f}", _TOP, _TOP + _PLOT_H, _TOP + _PLOT_H + 28, label, at.strftime("%H:%M"))
            for at, label in events
            if at is not None
        ),
    )
    shadow_marks = format_html_join(
        "",
        '<text class="sun-shadow" x="{0}" y="{1}" text-anchor="middle">shadow {2} {3}</text>',
        (
            (f"{_x(day, at):.1f}", _TOP - 8 + 10 * (index % 2), name[0].upper(), at.strftime("%H:%M"))
            for index, (name, moments) in enumerate(day.shadow_times.items())
            for at in moments
        ),
    )
    ticks = format_html_join(
        "",
        '<line class="sun-grid" x1="{0}" x2="{0}" y1="{1}" y2="{2}"/>'
        '<text class="sun-tick" x="{0}" y="{3}" text-anchor="middle">{4}</text>',
        ((x, _TOP, _TOP + _PLOT_H, _TOP + _PLOT_H + 14, label) for x, label in hour_ticks),
    )
    azimuth_lines = format_html_join(
        "", '<polyline class="sun-azimuth" fill="none" points="{}"/>', ((run,) for run in azimuth_runs)
    )
    title = f"Sun on {day.day:%Y-%m-%d} at {day.place.latitude:.4f}, {day.place.longitude:.4f} ({day.place.zone})"
    return format_html(
        '<svg class="sun-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'role="img" aria-label="{title}"><title>{title}</title>'
        '<rect class="sun-night" x="{left}" y="{horizon}" width="{pw}" height="{below}" fill="#e6e8ef"/>'
        '<line class="sun-horizon" x1="{left}" x2="{right}" y1="{horizon}" y2="{horizon}" stroke="#667"/>'
        "{ticks}{events}{shadows}"
        '<polyline class="sun-elevation" fill="none" stroke="#d48a00" stroke-width="2" points="{elevation}"/>'
        '<g stroke="#3367b5" stroke-dasharray="4 3">{azimuth}</g>'
        '<text class="sun-axis" x="4" y="{top}">elev. 90°</text>'
        '<text class="sun-axis" x="4" y="{horizon}">0°</text>'
        '<text class="sun-axis" x="{right}" y="{top}" dx="2">az. 360°</text>'
        '<text class="sun-axis" x="{right}" y="{bottom}" dx="2">0°</text>'
        "</svg>",
        w=_WIDTH, h=_HEIGHT, title=title, left=_LEFT, right=_LEFT + _PLOT_W, top=_TOP, bottom=_TOP + _PLOT_H,
        horizon=f"{horizon_y:.1f}", pw=_PLOT_W, below=f"{_TOP + _PLOT_H - horizon_y:.1f}",
        ticks=ticks, events=event_lines, shadows=shadow_marks, elevation=elevation, azimuth=azimuth_lines,
    )  # fmt: skip


def sun_day_context(day: sun.SunDay | None) -> dict[str, Any] | None:
    """Return what the desk shows of a day: the chart and its numbers."""
    if day is None:
        return None
    highest = day.highest
    return {
        "day": day,
        "chart": sun_chart_svg(day),
        "highest": highest,
        "shadow_times": [
            (name, [at.strftime("%H:%M") for at in moments]) for name, moments in day.shadow_times.items()
        ],
    }


def position_context(position: sun.SunPosition) -> dict[str, Any]:
    """Return one position with its shadow, rounded for reading."""
    return {
        "position": position,
        "shadow_direction": sun.compass_point(position.shadow_azimuth_deg),
    }


def case_sun_panel(case: Case) -> dict[str, Any]:
    """Return the case page's sun panel: place, day chart and the sun at each capture time."""
    found = chronolocation.case_sun(case=case)
    return {
        "found": found,
        "day": sun_day_context(found.day),
        "positions": [(moment, position_context(position)) for moment, position in found.positions],
        "form": SunForm(
            initial={
                "latitude": found.place.latitude if found.place else None,
                "longitude": found.place.longitude if found.place else None,
                "date": found.day.day if found.day else case.claimed_date,
            }
        ),
    }


class SunForm(forms.Form):
    """Any place and local time: the reviewer's question, answered without saving anything."""

    latitude = forms.FloatField(min_value=-90, max_value=90)
    longitude = forms.FloatField(min_value=-180, max_value=180)
    date = forms.DateField(help_text="YYYY-MM-DD, local")
    time = forms.TimeField(required=False, help_text="HH:MM, local; empty for the day chart only")
    zone = forms.CharField(required=False, max_length=64, help_text="e.g. Europe/Kyiv; empty: from the coordinates")


def sun_view(request: HttpRequest) -> HttpResponse:
    """Answer the sun form: the day chart, and the position at the time if one is given. Saves nothing."""
    form = SunForm(request.GET or None)
    context: dict[str, Any] = {"form": form, "title": "Sun position", "error": ""}
    if form.is_valid():
        data = form.cleaned_data
        try:
            place = sun.place_at(latitude=data["latitude"], longitude=data["longitude"], zone=data["zone"] or "")
            if data["time"] is not None:
                moment = sun.local_moment(place=place, day=data["date"], clock=data["time"])
                context["position"] = position_context(sun.sun_position(place=place, at=moment))
            context["place"] = place
            context["day"] = sun_day_context(sun.sun_day(place=place, day=data["date"]))
        except sun.SunInputError as exc:
            context["error"] = str(exc)
    return TemplateResponse(request, "admin/workflows/case/sun.html", context)
