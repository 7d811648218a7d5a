"""Times on the desk in each reader's zone: the middleware that activates it, and how a time is shown."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime
from functools import cache

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from workflows import selectors


@cache
def zone_names() -> list[str]:
    """Return the IANA zone names a user may choose, sorted."""
    return sorted(zoneinfo.available_timezones())


class UserTimeZoneMiddleware:
    """Show times in the zone the signed-in user chose, else in ``settings.TIME_ZONE``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = selectors.reviewer_time_zone(user=request.user) if request.user.is_authenticated else ""
        if name:
            timezone.activate(zoneinfo.ZoneInfo(name))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def zoned_time(moment: datetime | None) -> SafeString | str:
    """Return a time in the active zone with its zone's name, and the UTC time on hover."""
    if moment is None:
        return "—"
    local = timezone.localtime(moment)
    utc = moment.astimezone(zoneinfo.ZoneInfo("UTC"))
    return format_html(
        '<time datetime="{}" title="{} UTC">{} {}</time>',
        utc.isoformat(),
        f"{utc:%Y-%m-%d %H:%M}",
        f"{local:%Y-%m-%d %H:%M}",
        local.tzname() or "",
    )
