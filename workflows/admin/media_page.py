"""What the desk's media item page shows: the evidence facts in words, warnings only when true, keyframes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from verify.models import Keyframe, MediaItem
from workflows import selectors
from workflows.admin import photo_panels, presenters


def keyframe_reason_text(reason: str) -> str:
    """Return why a frame was kept, as a reviewer would say it."""
    texts: dict[str, str] = {
        Keyframe.Reason.SCENE: "first frame after a cut",
        Keyframe.Reason.IFRAME: "key frame",
        Keyframe.Reason.INTERVAL: f"every {settings.VERIFY_KEYFRAME_INTERVAL_S:g} s",
        Keyframe.Reason.PHOTO: "photo",
    }
    return texts.get(reason, reason)


@dataclass(frozen=True)
class KeyframeTile:
    keyframe: Keyframe
    time: str  # "" for a photo: a still has no moment
    reasons: str
    cut: bool


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    warning: bool = False


def _item_facts(item: MediaItem, *, still: bool) -> list[Fact]:
    analysis = item.get_state_display()
    if not item.is_finished:
        analysis += f" ({item.get_stage_display()}, {item.progress_percent}%)"
    if item.state == MediaItem.State.FAILED:
        analysis += f": {item.error_message} ({item.error_code})"
    integrity = "not checked yet"
    if item.integrity_checked_at is not None:
        integrity = f"the stored original matches its SHA-256 (checked {item.integrity_checked_at:%Y-%m-%d %H:%M})"
    facts = [
        Fact("Original file name", item.original_filename or "not given"),
        Fact("SHA-256", item.sha256 or "not computed yet"),
        Fact("Size", f"{filesizeformat(item.size_bytes)} ({item.size_bytes} bytes)"),
        Fact("Type", item.mime_type or "unknown"),
        Fact("Submitted by", str(item.uploaded_by or "unknown")),
        Fact("Analysis", analysis, warning=item.state == MediaItem.State.FAILED),
        Fact("Analysis mode", item.get_mode_display()),
        Fact("Attempts", str(item.attempts)),
        Fact("Decoded with", item.ffmpeg_version or "—"),
        Fact("Integrity", integrity),
    ]
    if item.integrity_mismatch:
        facts[-1] = Fact("Integrity", "The stored original no longer matches its SHA-256.", warning=True)
    if not still:
        capped = item.keyframes_truncated
        cap_text = "More frames qualified than the keyframe cap allowed; some were left out." if capped else "no"
        facts.append(Fact("Keyframe cap reached", cap_text, warning=capped))
    return facts


def _is_still(item: MediaItem) -> bool:
    metadata = getattr(item, "metadata", None)
    photo = any(Keyframe.Reason.PHOTO in keyframe.reasons for keyframe in item.keyframes.all())
    return photo or bool(metadata is not None and metadata.frame_count == 1 and metadata.duration_s is None)


def media_page_context(request: HttpRequest, item_id: int) -> dict[str, Any]:
    """Return what the media item page shows of an item this user may see."""
    item = selectors.media_item_detail_for_user(user=request.user).select_related("case", "uploaded_by").get(pk=item_id)
    metadata = getattr(item, "metadata", None)
    still = _is_still(item)
    signals = photo_panels.signals_of(metadata)
    rows = [
        *presenters.metadata_rows(metadata),
        *(presenters.MetadataRow(*row) for row in photo_panels.photo_rows(metadata)),
    ]
    if still:  # a photo has no duration or frame rate, whatever a container field says
        rows = [row for row in rows if row.label not in ("Duration", "Frames", "Decoded")]
    tiles = [
        KeyframeTile(
            keyframe=keyframe,
            time="" if still else presenters.clock(keyframe.timestamp_s),
            reasons=", ".join(keyframe_reason_text(reason) for reason in keyframe.reasons),
            cut=Keyframe.Reason.SCENE in keyframe.reasons,
        )
        for keyframe in item.keyframes.all()
    ]
    duplicate_id = getattr(item, "visible_duplicate_of_id", None)
    return {
        "item": item,
        "still": still,
        "facts": _item_facts(item, still=still),
        "duplicate_of_id": duplicate_id,
        "partial": presenters.partial_signal(signals),
        "signals": [signal for signal in signals if signal.get("code") != "partial"],
        "metadata_rows": rows,
        "values_truncated": bool(metadata is not None and metadata.values_truncated),
        "keyframe_tiles": tiles,
        "reveal_keyframes": selectors.reviewer_reveals_keyframes(user=request.user),
    }
