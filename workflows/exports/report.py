"""The case report: everything a reader needs to follow a verification, as HTML and as PDF.

Keyframes and contact sheets are blurred unless the person generating the report chose to show
them (``show_graphic``); the choice is printed in the report and recorded in the history. Images
are embedded, so the HTML file stands alone.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils import timezone
from PIL import Image, ImageFilter

import verify
from verify.models import ContentCredentials, Keyframe, MediaItem, MediaMetadata
from workflows import selectors
from workflows.models import AuditEvent, Case, Note

_THUMBNAIL_PX = 320
_SHEET_PX = 900


@dataclass
class MediaSection:
    """One media item as the report shows it."""

    item: MediaItem
    metadata_rows: list[tuple[str, str, str]]  # label, value, where it came from
    keyframes: list[tuple[float, str]]  # timestamp, image data URI
    contact_sheet: str
    credentials: ContentCredentials | None
    signals: list[dict[str, str]]
    timestamps: list[Any]
    # Less decoded than the container declares (verify.decoding): shown above everything else.
    partial: dict[str, str] | None = None
    seen_before: list[Any] = field(default_factory=list)


def _data_uri(name: str, *, width_px: int, blur: bool) -> str:
    if not name or not default_storage.exists(name):
        return ""
    with default_storage.open(name, "rb") as stored, Image.open(stored) as opened:
        opened.thumbnail((width_px, width_px * 4))
        image = opened.convert("RGB")
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(radius=max(6, image.width // 20)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def _metadata_rows(metadata: MediaMetadata | None) -> list[tuple[str, str, str]]:
    if metadata is None:
        return []
    m = metadata
    location = f"{m.latitude:.6f}, {m.longitude:.6f}" if m.latitude is not None and m.longitude is not None else ""
    capture = f"{m.capture_time_local} {m.capture_time_zone}".strip()
    size = f"{m.display_width}×{m.display_height}" if m.display_width and m.display_height else ""
    rows = [
        ("Creation time (UTC)", m.creation_time.isoformat() if m.creation_time else "", m.creation_time_source),
        ("Capture time (device clock)", capture, m.capture_time_source),
        ("Location", location, m.location_source),
        ("Device", " ".join(filter(None, [m.device_make, m.device_model])), ""),
        ("Software", m.device_software or m.creator_tool, ""),
        ("Encoder", m.encoder, ""),
        ("Container", m.container_long_name or m.container, ""),
        ("Video codec", m.video_codec, ""),
        ("Resolution (displayed)", size, ""),
        ("Rotation", f"{m.rotation_deg}°" if m.rotation_deg else "", ""),
        ("Duration", f"{m.duration_s:.3f} s" if m.duration_s else "", ""),
        ("Audio", m.audio_codec, ""),
    ]
    return [row for row in rows if row[1]]


def _media_sections(case: Case, *, user: Any, show_graphic: bool) -> list[MediaSection]:
    seen = selectors.case_seen_before_for_user(case=case, user=user)
    items = (
        MediaItem.objects.filter(case=case)
        .select_related("metadata")
        .prefetch_related("timestamps")
        .order_by("uploaded_at", "id")
    )
    sections = []
    for item in items:
        metadata = getattr(item, "metadata", None) if hasattr(item, "metadata") else None
        keyframes = Keyframe.objects.filter(media_item=item).order_by("timestamp_s")
        credentials = ContentCredentials.objects.filter(media_item=item).first()
        signals = list(metadata.signals) if metadata is not None else []
        sections.append(
            MediaSection(
                item=item,
                metadata_rows=_metadata_rows(metadata),
                keyframes=[
                    (kf.timestamp_s, _data_uri(kf.image.name, width_px=_THUMBNAIL_PX, blur=not show_graphic))
                    for kf in keyframes
                ],
                contact_sheet=_data_uri(item.contact_sheet.name, width_px=_SHEET_PX, blur=not show_graphic),
                credentials=credentials,
                signals=[s for s in signals if s.get("code") != "partial"],
                partial=next((s for s in signals if s.get("code") == "partial"), None),
                timestamps=list(item.timestamps.all()),
                seen_before=[entry for entry in seen.entries if entry.media_item_id == item.pk],
            )
        )
    return sections


def _notes(case: Case) -> list[tuple[Note, int]]:
    versions = list(selectors.note_versions(case=case))
    replaced = {note.replaces_id for note in versions if note.replaces_id}
    by_id = {note.pk: note for note in versions}
    current = []
    for note in versions:
        if note.pk in replaced:
            continue
        edits, cursor = 0, note
        while cursor.replaces_id and cursor.replaces_id in by_id:
            edits, cursor = edits + 1, by_id[cursor.replaces_id]
        current.append((note, edits))
    return current


def _last_event_time(case: Case, action: str) -> datetime | None:
    event = AuditEvent.objects.filter(case=case, action=action).order_by("-id").first()
    return event.created_at if event is not None else None


def report_context(
    *, case: Case, user: Any, show_graphic: bool, generated_at: datetime | None = None
) -> dict[str, Any]:
    """Return what the report template shows for a case, as this user may see it."""
    history = list(selectors.case_history(case=case))
    return {
        "case": case,
        "source_post": None,  # the fetched source post goes here once posts are archived
        "verdict_proposed_at": _last_event_time(case, AuditEvent.Action.VERDICT_PROPOSED),
        "verdict_approved_at": _last_event_time(case, AuditEvent.Action.VERDICT_APPROVED),
        "checklist": list(case.checklist.order_by("id")),
        "media": _media_sections(case, user=user, show_graphic=show_graphic),
        "notes": _notes(case),
        "history": history,
        "audit_head_hash": history[-1].entry_hash if history else "",
        "show_graphic": show_graphic,
        "generated_by": user.get_username(),
        "generated_at": generated_at or timezone.now(),
        "service_version": verify.__version__,
    }


def report_html(*, case: Case, user: Any, show_graphic: bool, generated_at: datetime | None = None) -> str:
    """Return the case report as one self-contained HTML document."""
    context = report_context(case=case, user=user, show_graphic=show_graphic, generated_at=generated_at)
    return render_to_string("workflows/report.html", context)


def report_pdf(*, html: str) -> bytes:
    """Return the report's HTML rendered as PDF (WeasyPrint)."""
    import weasyprint  # loaded only where reports are made: it pulls in Pango

    return weasyprint.HTML(string=html).write_pdf()  # type: ignore[no-any-return]
