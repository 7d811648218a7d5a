"""The case's audit trail: one function per event, each writing its payload's one shape.

Call them inside the transaction of the change they record, so that the history and the
change are committed together. ``before`` and ``after`` hold what the event changed; an event
that only happened (a download, a finished analysis) has only ``after``.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from verify.models import MediaItem
from workflows import audit_chain
from workflows.models import Assignment, AuditEvent, Case, ChecklistItem, Export, Note


def audit_record(*, case: Case, actor: Any, action: str, obj: Any, before: Any = None, after: Any = None) -> AuditEvent:
    """Append one event to the case's history, chained to the case's last event; prefer the named functions below.

    The case row is locked first (``select_for_update``; SQLite's IMMEDIATE transactions lock
    the whole database), so two events written at once for one case are chained one after the
    other, never both after the same predecessor. The lock lasts until the caller's transaction
    commits.
    """
    with transaction.atomic():
        Case.objects.select_for_update().filter(pk=case.pk).values_list("pk").first()
        last = AuditEvent.objects.filter(case_id=case.pk).order_by("-id").values_list("entry_hash", flat=True).first()
        event = AuditEvent(
            case=case,
            actor=actor,
            action=action,
            object_type=type(obj).__name__.lower(),
            object_id=str(obj.pk),
            before=before,
            after=after,
            created_at=timezone.now(),
            previous_hash=last or audit_chain.GENESIS_HASH,
        )
        event.entry_hash = audit_chain.content_hash(audit_event_content(event))
        event.save()
    return event


def audit_event_content(event: AuditEvent) -> dict[str, Any]:
    """Return the hashed content of a stored or new event (``workflows.audit_chain.CHAINED_FIELDS``)."""
    return audit_chain.event_content(
        case_id=event.case_id,
        actor_id=event.actor_id,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        before=event.before,
        after=event.after,
        created_at=event.created_at,
        previous_hash=event.previous_hash,
    )


def username(user: Any) -> str | None:
    """Return how a user is named in the history (None for the service itself)."""
    return user.get_username() if user is not None else None


def case_opened_event(*, case: Case, actor: Any) -> AuditEvent:
    """Record that a case was opened for a claim."""
    after = {"title": case.title, "claim": case.claim, "source_url": case.source_url, "status": case.status}
    return audit_record(case=case, actor=actor, action=AuditEvent.Action.CASE_OPENED, obj=case, after=after)


def media_submitted_event(*, item: MediaItem, actor: Any, duplicate_in_case: int | None) -> AuditEvent:
    """Record a submitted original; an earlier copy of its bytes is named only if it is in the same case."""
    after = {
        "sha256": item.sha256,
        "size_bytes": item.size_bytes,
        "original_filename": item.original_filename,
        "duplicate_of": duplicate_in_case,
        **({"url": item.source_post.submitted_url} if item.source_post is not None else {}),
    }
    return audit_record(case=item.case, actor=actor, action=AuditEvent.Action.MEDIA_SUBMITTED, obj=item, after=after)


def case_transitioned_event(
    *, case: Case, actor: Any, before: dict[str, Any], after: dict[str, Any], move: str = "", reason: str = ""
) -> AuditEvent:
    """Record a move of the case's status (and what moved with it); ``move`` names a move the table does not."""
    after = {**after, **({"move": move} if move else {}), **({"reason": reason} if reason else {})}
    return audit_record(
        case=case, actor=actor, action=AuditEvent.Action.TRANSITION, obj=case, before=before, after=after
    )


def verdict_proposed_event(*, case: Case, actor: Any, verdict: str, rationale: str) -> AuditEvent:
    """Record a proposed verdict and its rationale."""
    after = {"verdict": verdict, "rationale": rationale}
    return audit_record(case=case, actor=actor, action=AuditEvent.Action.VERDICT_PROPOSED, obj=case, after=after)


def verdict_approved_event(*, case: Case, actor: Any) -> AuditEvent:
    """Record a verdict approved by a second person, naming its proposer."""
    after = {"verdict": case.verdict, "proposed_by": username(case.verdict_proposed_by)}
    return audit_record(case=case, actor=actor, action=AuditEvent.Action.VERDICT_APPROVED, obj=case, after=after)


def case_assigned_event(*, assignment: Assignment, actor: Any, previous: str | None) -> AuditEvent:
    """Record who the case was assigned to, and who had it before."""
    return audit_record(
        case=assignment.case,
        actor=actor,
        action=AuditEvent.Action.ASSIGNMENT,
        obj=assignment,
        before={"assignee": previous},
        after={"assignee": username(assignment.assignee)},
    )


def note_written_event(*, note: Note, actor: Any) -> AuditEvent:
    """Record a new note, or a new version of one (the replaced body is kept in ``before``)."""
    replaces = note.replaces
    return audit_record(
        case=note.case,
        actor=actor,
        action=AuditEvent.Action.NOTE_EDITED if replaces else AuditEvent.Action.NOTE_ADDED,
        obj=note,
        before={"note": replaces.pk, "body": replaces.body} if replaces else None,
        after={"body": note.body, "media_item": note.media_item_id, "timestamp_s": note.timestamp_s},
    )


def checklist_changed_event(
    *, item: ChecklistItem, actor: Any, before: dict[str, Any], after: dict[str, Any]
) -> AuditEvent:
    """Record a checklist item's change of state, finding or coordinates."""
    return audit_record(
        case=item.case,
        actor=actor,
        action=AuditEvent.Action.CHECKLIST_CHANGED,
        obj=item,
        before={"key": item.key, **before},
        after={"key": item.key, **after},
    )


def analysis_finished_event(*, case: Case, item: MediaItem) -> AuditEvent:
    """Record that an item's analysis reached its end, and how."""
    after = {"state": item.state, "error_code": item.error_code}
    return audit_record(case=case, actor=None, action=AuditEvent.Action.ANALYSIS_FINISHED, obj=item, after=after)


def integrity_mismatch_event(*, case: Case, item: MediaItem, expected: str, actual: str) -> AuditEvent:
    """Record that a stored original no longer hashes to its SHA-256 (or is gone)."""
    return audit_record(
        case=case,
        actor=None,
        action=AuditEvent.Action.INTEGRITY_MISMATCH,
        obj=item,
        before={"sha256": expected},
        after={"sha256": actual or None, "missing": not actual},
    )


def original_downloaded_event(*, item: MediaItem, actor: Any) -> AuditEvent:
    """Record that someone downloaded an original file."""
    after = {"sha256": item.sha256}
    return audit_record(
        case=item.case, actor=actor, action=AuditEvent.Action.ORIGINAL_DOWNLOADED, obj=item, after=after
    )


def analysis_interrupted_event(
    *, case: Case, media_item_id: int, attempt: int, max_attempts: int, reason: str
) -> AuditEvent:
    """Record that an analysis lost its worker, and whether it will be retried."""
    return audit_record(
        case=case,
        actor=None,
        action=AuditEvent.Action.ANALYSIS_INTERRUPTED,
        obj=MediaItem(pk=media_item_id),  # named as the other events name a media item
        before={"state": MediaItem.State.RUNNING.value, "attempt": attempt},
        after={
            "state": MediaItem.State.INTERRUPTED.value,
            "reason": reason,
            "retrying": attempt < max_attempts,
            "max_attempts": max_attempts,
        },
    )


def export_generated_event(*, export: Export) -> AuditEvent:
    """Record a generated report or package: its kind, its SHA-256, and whether frames were shown unblurred."""
    after = {
        "kind": export.kind,
        "sha256": export.sha256,
        "size_bytes": export.size_bytes,
        "show_graphic": export.show_graphic,
        "state": export.state,
    }
    return audit_record(
        case=export.case, actor=export.requested_by, action=AuditEvent.Action.EXPORT_GENERATED, obj=export, after=after
    )


def export_downloaded_event(*, export: Export, actor: Any) -> AuditEvent:
    """Record that someone downloaded a report or package."""
    after = {"kind": export.kind, "sha256": export.sha256}
    return audit_record(
        case=export.case, actor=actor, action=AuditEvent.Action.EXPORT_DOWNLOADED, obj=export, after=after
    )


def ocr_languages_changed_event(*, case: Case, actor: Any, before: str, after: str) -> AuditEvent:
    """Record a change of the languages the case's keyframe text is read in ("" is the server's default)."""
    return audit_record(
        case=case,
        actor=actor,
        action=AuditEvent.Action.OCR_LANGUAGES_CHANGED,
        obj=case,
        before={"ocr_languages": before},
        after={"ocr_languages": after},
    )


def keyframe_text_reread_event(*, case: Case, actor: Any, languages: str, media_item_ids: list[int]) -> AuditEvent:
    """Record a request to read the case's keyframes again, in which languages and for which media items."""
    after = {"languages": languages, "media_items": media_item_ids}
    return audit_record(case=case, actor=actor, action=AuditEvent.Action.KEYFRAME_TEXT_REREAD, obj=case, after=after)
