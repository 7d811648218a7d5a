"""Signals, not verdicts: short findings a reviewer reads at a glance, each with its evidence.

A signal says where to look. None of them proves an edit or a fake, and their absence proves
nothing either: most platforms strip metadata from everything they pass on.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from verify.exif import ExifFacts

# Software that saves pictures after editing them (not a camera's own firmware or OS).
EDITORS = (
    "photoshop", "lightroom", "gimp", "snapseed", "pixelmator", "affinity", "picsart", "canva", "facetune",
    "vsco", "paint.net", "photopea", "luminar", "capture one", "darktable", "rawtherapee", "fotor",
    "photodirector", "meitu", "firefly", "krita", "airbrush", "remini", "photoscape", "inkscape",
)  # fmt: skip
# The furthest any zone is ahead of UTC: a local time later than the upload by more is in the future.
_MAX_ZONE_AHEAD = timedelta(hours=14)


def _signal(code: str, title: str, evidence: str) -> dict[str, str]:
    return {"code": code, "title": title, "evidence": evidence}


def editor_named(text: str) -> str:
    """Return the editor a Software/CreatorTool value names, or ""."""
    lowered = text.lower()
    return next((name for name in EDITORS if re.search(rf"\b{re.escape(name)}\b", lowered)), "")


def signals_find(
    *,
    facts: ExifFacts,
    tags: dict[str, Any],
    uploaded_at: datetime,
    claimed_date: date | None,
    thumbnail_distance_bits: int | None,
    thumbnail_threshold_bits: int,
    has_camera_metadata: bool,
) -> list[dict[str, str]]:
    """Return the signals for one file's metadata, in the order a reviewer should read them."""
    found = []
    for key in ("IFD0:Software", "XMP-xmp:CreatorTool", "Keys:Software"):
        value = str(tags.get(key) or "")
        if value and editor_named(value):
            found.append(_signal("editing_software", "Saved by editing software", f"{key} = {value!r}"))
            break
    else:
        agents = [step["software"] for step in facts.edit_history if editor_named(step.get("software", ""))]
        if agents:
            found.append(_signal("editing_software", "Saved by editing software", f"XMP history names {agents[0]!r}"))
    if thumbnail_distance_bits is not None and thumbnail_distance_bits >= thumbnail_threshold_bits:
        found.append(
            _signal(
                "thumbnail_differs",
                "The embedded EXIF thumbnail shows a different picture",
                f"perceptual hashes differ in {thumbnail_distance_bits} of 64 bits",
            )
        )
    found += _time_signals(facts, uploaded_at=uploaded_at, claimed_date=claimed_date)
    has_time = facts.creation_time is not None or bool(facts.capture_time_local)
    if facts.location is not None and not has_time:
        found.append(
            _signal("gps_without_time", "GPS position but no capture time", f"position from {facts.location_source}")
        )
    if not has_camera_metadata:
        found.append(
            _signal(
                "no_camera_metadata",
                "No camera metadata",
                "no capture time, position or device; messaging apps and most platforms strip these, "
                "so their absence proves nothing",
            )
        )
    return found


def _time_signals(facts: ExifFacts, *, uploaded_at: datetime, claimed_date: date | None) -> list[dict[str, str]]:
    found = []
    instant, local = facts.creation_time, facts.capture_time_local
    shown = f"{local} (UTC{facts.capture_time_zone})" if local and facts.capture_time_zone else local
    shown = shown or (instant.isoformat() if instant else "")
    source = facts.capture_time_source or facts.creation_time_source
    later_than_upload = (instant is not None and instant > uploaded_at) or (
        instant is None and local and datetime.fromisoformat(local) > uploaded_at.replace(tzinfo=None) + _MAX_ZONE_AHEAD
    )
    if later_than_upload:
        found.append(
            _signal(
                "capture_after_upload",
                "Capture time is later than the upload",
                f"{source} = {shown}; uploaded {uploaded_at.isoformat(timespec='seconds')}",
            )
        )
    capture_day = (datetime.fromisoformat(local).date() if local else None) or (instant.date() if instant else None)
    # One day of slack: a local date and a UTC date may differ across midnight.
    if claimed_date is not None and capture_day is not None and capture_day > claimed_date + timedelta(days=1):
        found.append(
            _signal(
                "capture_after_claimed_date",
                "Capture time is later than the claimed date",
                f"{source} = {shown}; claimed {claimed_date.isoformat()}",
            )
        )
    return found
