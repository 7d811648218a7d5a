"""When it was filmed, posted and said to have happened: the comparisons a reviewer should look at.

Each signal states the two values and where they came from; none is a verdict. A value that is
missing gives no signal.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

_DAYS_WORTH_SAYING = 2  # clocks, time zones and late uploads explain a day or so


def _span(days: int) -> str:
    if days >= 730:
        return f"{days // 365} years"
    if days >= 60:
        return f"{days // 30} months"
    return f"{days} days"


def capture_time_of(metadata: Any) -> tuple[datetime | date | None, str]:
    """Return the capture time the file's metadata gives (creation time, else the photo's capture day), and its tag."""
    if metadata is None:
        return None, ""
    if metadata.creation_time is not None:
        return metadata.creation_time, metadata.creation_time_source
    local = (metadata.capture_time_local or "")[:10]
    try:
        return date.fromisoformat(local), metadata.capture_time_source
    except ValueError:
        return None, ""


def post_timing_signals(
    *,
    captured: datetime | date | None,
    captured_source: str,
    posted_at: datetime | None,
    posted_at_source: str,
    claimed_date: date | None,
) -> list[dict[str, str]]:
    """Return the signals comparing capture time, posting time and the claimed date."""
    signals = []
    captured_day = captured.date() if isinstance(captured, datetime) else captured
    posted_day = posted_at.date() if posted_at is not None else None
    if captured_day and posted_day and (posted_day - captured_day).days >= _DAYS_WORTH_SAYING:
        gap = (posted_day - captured_day).days
        signals.append({
            "code": "filmed_long_before_posted",
            "title": f"Filmed {_span(gap)} before it was posted",
            "evidence": f"Capture time {captured_day} ({captured_source}); posted {posted_at:%Y-%m-%d %H:%M} UTC "
            f"({posted_at_source}).",
        })  # fmt: skip
    if captured_day and posted_day and (captured_day - posted_day).days >= _DAYS_WORTH_SAYING:
        signals.append({
            "code": "filmed_after_posted",
            "title": "The file says it was filmed after it was posted",
            "evidence": f"Capture time {captured_day} ({captured_source}); posted {posted_day} ({posted_at_source}).",
        })  # fmt: skip
    if posted_day and claimed_date and (claimed_date - posted_day).days >= 1:
        signals.append({
            "code": "posted_before_claimed_date",
            "title": f"Posted {_span((claimed_date - posted_day).days)} before the claimed date",
            "evidence": f"Posted {posted_day} ({posted_at_source}); the claim says {claimed_date}.",
        })  # fmt: skip
    if captured_day and claimed_date and (claimed_date - captured_day).days >= _DAYS_WORTH_SAYING:
        signals.append({
            "code": "filmed_before_claimed_date",
            "title": f"Filmed {_span((claimed_date - captured_day).days)} before the claimed date",
            "evidence": f"Capture time {captured_day} ({captured_source}); the claim says {claimed_date}.",
        })  # fmt: skip
    return signals
