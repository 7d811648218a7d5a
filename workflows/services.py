"""Write operations on cases. Every change writes its audit event in the same transaction."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from verify.api.errors import DomainError
from verify.intake import media_item_create
from verify.models import Keyframe, MediaItem
from workflows import transitions
from workflows.models import Assignment, AuditEvent, Case, ChecklistItem, Note, ReviewerPreference, Status, Verdict
from workflows.selectors import user_roles
from workflows.transitions import Move, Refusal, Role


class WorkflowError(DomainError):
    """A refused workflow operation: code, message, the HTTP status that fits, extra fields."""


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def audit_record(*, case: Case, actor: Any, action: str, obj: Any, before: Any = None, after: Any = None) -> AuditEvent:
    """Append one event to the case's history."""
    return AuditEvent.objects.create(
        case=case,
        actor=actor,
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=str(obj.pk),
        before=before,
        after=after,
    )


# --- cases and submissions ------------------------------------------------------------------


def case_create(
    *,
    title: str,
    claim: str,
    created_by: Any,
    source_url: str = "",
    claimed_location: str = "",
    claimed_date: Any = None,
) -> Case:
    """Open a case for a claim, with its verification checklist."""
    case = Case(
        title=title,
        claim=claim,
        source_url=source_url,
        claimed_location=claimed_location,
        claimed_date=claimed_date,
        created_by=created_by,
    )
    case.full_clean()
    with transaction.atomic():
        case.save()
        ChecklistItem.objects.bulk_create(ChecklistItem(case=case, key=key) for key in ChecklistItem.Key.values)
        audit_record(
            case=case,
            actor=created_by,
            action=AuditEvent.Action.CASE_OPENED,
            obj=case,
            after={"title": title, "claim": claim, "source_url": source_url, "status": case.status},
        )
    return case


def case_media_submit(
    *, case: Case | None, claim_fields: dict[str, Any], upload: UploadedFile, submitted_by: Any, mode: str = ""
) -> MediaItem:
    """Add an uploaded file to a case, opening the case from claim_fields when none is given."""
    with transaction.atomic():
        if case is None:
            case = case_create(created_by=submitted_by, **claim_fields)
        else:
            case = _case_evidence_arrive(case=case, actor=submitted_by)
        item = media_item_create(case=case, upload=upload, uploaded_by=submitted_by, mode=mode)
        audit_record(
            case=case,
            actor=submitted_by,
            action=AuditEvent.Action.MEDIA_SUBMITTED,
            obj=item,
            after={
                "sha256": item.sha256,
                "size_bytes": item.size_bytes,
                "original_filename": item.original_filename,
                "duplicate_of": _duplicate_in_case(item),
            },
        )
    return item


def _case_evidence_arrive(*, case: Case, actor: Any) -> Case:
    """Refuse new media for a closed case; move an open one where new evidence sends it.

    Runs in the submission's transaction, before the original is stored, with the case row
    locked: a verdict approved at the same moment either lands first (and the media is refused)
    or finds the version changed.
    """
    case = Case.objects.select_for_update().select_related("assignee").get(pk=case.pk)
    on_hold = case.status == Status.ON_HOLD
    checked = transitions.evidence_check(status=case.held_from if on_hold else case.status)
    if isinstance(checked, Refusal):
        raise WorkflowError(checked.code, checked.message, http_status=checked.http_status)
    if checked is None:
        return case
    source = case.held_from if on_hold else case.status
    changes: dict[str, Any] = {"held_from": checked.target} if on_hold else {"status": checked.target}
    if source == Status.VERDICT_PROPOSED:
        changes.update(verdict="", verdict_rationale="", verdict_proposed_by=None)
    before = {"status": case.status, "held_from": case.held_from, "verdict": case.verdict}
    Case.objects.filter(pk=case.pk).update(**changes, version=F("version") + 1, updated_at=timezone.now())
    case.refresh_from_db()
    after = {"status": case.status, "held_from": case.held_from, "verdict": case.verdict}
    audit_record(
        case=case,
        actor=actor,
        action=AuditEvent.Action.TRANSITION,
        obj=case,
        before={key: value for key, value in before.items() if key != "held_from" or on_hold},
        after={
            **{key: value for key, value in after.items() if key != "held_from" or on_hold},
            "move": "new_evidence",
            "reason": checked.reason,
        },
    )
    return case


def _duplicate_in_case(item: MediaItem) -> int | None:
    # Everyone reading the history may see this case, not necessarily the case holding the
    # earliest copy of the bytes: only an earlier copy in the same case is named.
    earlier = MediaItem.objects.filter(case_id=item.case_id, sha256=item.sha256, pk__lt=item.pk).order_by("pk")
    return earlier.values_list("pk", flat=True).first()


def case_mark_ready_if_analysed(*, case_id: int, media_item_id: int | None = None) -> bool:
    """Move a new case to ready_for_review once every media item has finished its analysis.

    Runs after each analysis commits; the conditional UPDATE makes concurrent calls safe.
    """
    with transaction.atomic():
        case = Case.objects.get(pk=case_id)
        if media_item_id is not None:
            item = MediaItem.objects.get(pk=media_item_id)
            audit_record(
                case=case,
                actor=None,
                action=AuditEvent.Action.ANALYSIS_FINISHED,
                obj=item,
                after={"state": item.state, "error_code": item.error_code},
            )
        unfinished = MediaItem.objects.filter(case_id=case_id).exclude(state__in=MediaItem.TERMINAL_STATES)
        if unfinished.exists():
            return False
        moved = Case.objects.filter(pk=case_id, status=Status.NEW).update(
            status=Status.READY_FOR_REVIEW, version=F("version") + 1, updated_at=timezone.now()
        )
        if moved:
            audit_record(
                case=case,
                actor=None,
                action=AuditEvent.Action.TRANSITION,
                obj=case,
                before={"status": Status.NEW},
                after={"status": Status.READY_FOR_REVIEW},
            )
    return bool(moved)


def case_integrity_failure_record(*, case_id: int, media_item_id: int, expected: str, actual: str) -> None:
    """Record in the case's history that a stored original no longer matches its SHA-256."""
    item = MediaItem.objects.get(pk=media_item_id)
    audit_record(
        case=Case.objects.get(pk=case_id),
        actor=None,
        action=AuditEvent.Action.INTEGRITY_MISMATCH,
        obj=item,
        before={"sha256": expected},
        after={"sha256": actual or None, "missing": not actual},
    )


def original_download_record(*, media_item: MediaItem, actor: Any) -> None:
    """Record in the case's history that someone downloaded an original file."""
    audit_record(
        case=media_item.case,
        actor=actor,
        action=AuditEvent.Action.ORIGINAL_DOWNLOADED,
        obj=media_item,
        after={"sha256": media_item.sha256},
    )


# --- transitions ----------------------------------------------------------------------------


def allowed_moves_for(*, case: Case, user: Any) -> list[Move]:
    """Return the moves this user may make on this case now."""
    return transitions.moves_allowed(
        status=case.status,
        roles=user_roles(user),
        actor_id=user.pk,
        proposer_id=case.verdict_proposed_by_id,
        held_from=case.held_from,
    )


def _refuse(refusal: Refusal, *, case: Case, user: Any) -> WorkflowError:
    allowed = [{"to": m.target, "name": m.name, "title": m.label} for m in allowed_moves_for(case=case, user=user)]
    return WorkflowError(refusal.code, refusal.message, http_status=refusal.http_status, allowed_transitions=allowed)


def _checklist_gate(case: Case) -> None:
    unsettled = [
        item.key
        for item in case.checklist.filter(key__in=transitions.GATED_CHECKLIST_KEYS)
        if item.state == ChecklistItem.State.OPEN or not item.finding.strip()
    ]
    if unsettled:
        raise WorkflowError(
            "checklist_incomplete",
            "Before proposing this verdict, mark "
            + ", ".join(sorted(unsettled))
            + " as done or not applicable, with a finding.",
            http_status=409,
            checklist_items=sorted(unsettled),
        )


def case_transition(*, case: Case, to: str, actor: Any, verdict: str = "", rationale: str = "", note: str = "") -> Case:
    """Move a case to another status, if the table allows this person to; return it reloaded.

    Two people acting on the same case at once: the UPDATE only matches the version both
    read, so exactly one wins and the other gets a ``case_changed`` refusal.
    """
    checked = transitions.move_check(
        status=case.status,
        target=to,
        roles=user_roles(actor),
        actor_id=actor.pk,
        proposer_id=case.verdict_proposed_by_id,
        held_from=case.held_from,
        verdict=verdict,
        rationale=rationale,
        note=note,
    )
    if isinstance(checked, Refusal):
        raise _refuse(checked, case=case, user=actor)
    move = checked
    if move.name == "propose" and verdict != Verdict.INCONCLUSIVE:
        _checklist_gate(case)

    changes: dict[str, Any] = {"status": move.target}
    if move.name == "take" and case.assignee_id is None:
        changes["assignee"] = actor
    elif move.name == "propose":
        changes.update(verdict=verdict, verdict_rationale=rationale, verdict_proposed_by=actor)
    elif move.name == "approve":
        changes["verdict_approved_by"] = actor
    elif move.name in ("send_back", "reopen"):
        changes.update(verdict="", verdict_rationale="", verdict_proposed_by=None, verdict_approved_by=None)
    if move.name == "hold":
        changes["held_from"] = case.status
    elif move.name == "resume":
        changes["held_from"] = ""

    before = {"status": case.status, "verdict": case.verdict, "assignee": _username(case.assignee)}
    with transaction.atomic():
        won = Case.objects.filter(pk=case.pk, version=case.version).update(
            **changes, version=F("version") + 1, updated_at=timezone.now()
        )
        if not won:
            current = Case.objects.get(pk=case.pk)
            raise _refuse(
                Refusal("case_changed", "Someone else changed this case just now; reload it and try again.", 409),
                case=current,
                user=actor,
            )
        case.refresh_from_db()
        after = {
            "status": case.status,
            "verdict": case.verdict,
            "assignee": _username(case.assignee),
            "move": move.name,
        }
        if note:
            after["note"] = note
        audit_record(case=case, actor=actor, action=AuditEvent.Action.TRANSITION, obj=case, before=before, after=after)
        if move.name == "propose":
            audit_record(
                case=case,
                actor=actor,
                action=AuditEvent.Action.VERDICT_PROPOSED,
                obj=case,
                after={"verdict": verdict, "rationale": rationale},
            )
        elif move.name == "approve":
            audit_record(
                case=case,
                actor=actor,
                action=AuditEvent.Action.VERDICT_APPROVED,
                obj=case,
                after={"verdict": case.verdict, "proposed_by": _username(case.verdict_proposed_by)},
            )
        if "assignee" in changes:
            _assignment_add(case=case, assignee=actor, actor=actor, previous=before["assignee"])
        if note:
            _note_create(case=case, author=actor, body=f"{move.label}: {note}")
    return case


# --- assignments ----------------------------------------------------------------------------


def _assignment_add(*, case: Case, assignee: Any, actor: Any, previous: str | None) -> Assignment:
    assignment = Assignment.objects.create(case=case, assignee=assignee, assigned_by=actor)
    audit_record(
        case=case,
        actor=actor,
        action=AuditEvent.Action.ASSIGNMENT,
        obj=assignment,
        before={"assignee": previous},
        after={"assignee": _username(assignee)},
    )
    return assignment


def case_assign_check_actor(*, actor: Any) -> None:
    """Refuse anyone but a lead, before anything about the assignment is looked at."""
    if Role.LEAD not in user_roles(actor):
        raise WorkflowError("forbidden", "Only a lead may assign cases. You are not a lead.", http_status=403)


def case_assign(*, case: Case, assignee: Any, actor: Any) -> Case:
    """Assign a reviewer to a case (leads only); a case ready for review goes into review."""
    case_assign_check_actor(actor=actor)
    if not user_roles(assignee) & transitions.REVIEWERS:
        raise WorkflowError("not_a_reviewer", f"{assignee.get_username()} is not a reviewer or lead.", http_status=400)
    if case.status == Status.CLOSED:
        raise WorkflowError("case_closed", "A closed case cannot be assigned; reopen it first.")
    previous = _username(case.assignee)
    changes: dict[str, Any] = {"assignee": assignee}
    if case.status == Status.READY_FOR_REVIEW:
        changes["status"] = Status.IN_REVIEW
    with transaction.atomic():
        won = Case.objects.filter(pk=case.pk, version=case.version).update(
            **changes, version=F("version") + 1, updated_at=timezone.now()
        )
        if not won:
            raise WorkflowError("case_changed", "Someone else changed this case just now; reload it and try again.")
        before_status = case.status
        case.refresh_from_db()
        _assignment_add(case=case, assignee=assignee, actor=actor, previous=previous)
        if case.status != before_status:
            audit_record(
                case=case,
                actor=actor,
                action=AuditEvent.Action.TRANSITION,
                obj=case,
                before={"status": before_status},
                after={"status": case.status, "move": "assign"},
            )
    return case


# --- notes ----------------------------------------------------------------------------------


def _note_create(
    *,
    case: Case,
    author: Any,
    body: str,
    media_item: MediaItem | None = None,
    keyframe: Keyframe | None = None,
    timestamp_s: float | None = None,
    replaces: Note | None = None,
) -> Note:
    note = Note.objects.create(
        case=case,
        author=author,
        body=body,
        media_item=media_item,
        keyframe=keyframe,
        timestamp_s=timestamp_s,
        replaces=replaces,
    )
    audit_record(
        case=case,
        actor=author,
        action=AuditEvent.Action.NOTE_EDITED if replaces else AuditEvent.Action.NOTE_ADDED,
        obj=note,
        before={"note": replaces.pk, "body": replaces.body} if replaces else None,
        after={"body": body, "media_item": getattr(media_item, "pk", None), "timestamp_s": timestamp_s},
    )
    return note


def note_add(
    *,
    case: Case,
    author: Any,
    body: str,
    media_item: MediaItem | None = None,
    keyframe: Keyframe | None = None,
    timestamp_s: float | None = None,
) -> Note:
    """Add a note to a case, optionally anchored to a media item and a keyframe or moment."""
    if not body.strip():
        raise ValidationError({"body": ["A note cannot be empty."]})
    if keyframe is not None:
        media_item = media_item or keyframe.media_item
        if keyframe.media_item_id != media_item.pk:
            raise ValidationError({"keyframe": ["The keyframe belongs to another media item."]})
        timestamp_s = keyframe.timestamp_s if timestamp_s is None else timestamp_s
    if media_item is not None and media_item.case_id != case.pk:
        raise ValidationError({"media_item": ["The media item belongs to another case."]})
    if timestamp_s is not None and timestamp_s < 0:
        raise ValidationError({"timestamp_s": ["A moment in the footage cannot be negative."]})
    with transaction.atomic():
        return _note_create(
            case=case, author=author, body=body, media_item=media_item, keyframe=keyframe, timestamp_s=timestamp_s
        )


def note_edit(*, note: Note, author: Any, body: str) -> Note:
    """Write a new version of a note; the old version is kept and marked as replaced."""
    if note.author_id != author.pk:
        raise WorkflowError("forbidden", "Only the author of a note may write a new version of it.", http_status=403)
    if Note.objects.filter(replaces=note).exists():
        raise _note_replaced()
    if not body.strip():
        raise ValidationError({"body": ["A note cannot be empty."]})
    try:
        with transaction.atomic():
            return _note_create(
                case=note.case,
                author=author,
                body=body,
                media_item=note.media_item,
                keyframe=note.keyframe,
                timestamp_s=note.timestamp_s,
                replaces=note,
            )
    except IntegrityError:
        # Two versions written at once: the one-to-one ``replaces`` lets exactly one in.
        raise _note_replaced() from None


def _note_replaced() -> WorkflowError:
    return WorkflowError("note_replaced", "This note already has a newer version; edit that one.")


# --- checklist ------------------------------------------------------------------------------


def checklist_update(
    *,
    case: Case,
    key: str,
    actor: Any,
    state: str | None = None,
    finding: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
) -> ChecklistItem:
    """Change a checklist item's state, finding or (for location) coordinates."""
    if not user_roles(actor) & transitions.REVIEWERS:
        raise WorkflowError("forbidden", "Only reviewers and leads work the checklist.", http_status=403)
    if case.status == Status.CLOSED:
        raise WorkflowError("case_closed", "The case is closed; a lead must reopen it before it can change.")
    item = ChecklistItem.objects.get(case=case, key=key)
    before = {"state": item.state, "finding": item.finding, "latitude": item.latitude, "longitude": item.longitude}
    if state is not None:
        item.state = state
    if finding is not None:
        item.finding = finding
    if latitude is not None or longitude is not None:
        if key != ChecklistItem.Key.LOCATION:
            raise ValidationError({"latitude": ["Only the location item has coordinates."]})
        if latitude is None or longitude is None:
            raise ValidationError({"latitude": ["Give both latitude and longitude."]})
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValidationError({"latitude": ["Latitude must be within ±90 and longitude within ±180."]})
        item.latitude, item.longitude = latitude, longitude
    item.updated_by = actor
    item.full_clean()
    with transaction.atomic():
        item.save()
        after = {"state": item.state, "finding": item.finding, "latitude": item.latitude, "longitude": item.longitude}
        audit_record(
            case=case,
            actor=actor,
            action=AuditEvent.Action.CHECKLIST_CHANGED,
            obj=item,
            before={"key": key, **before},
            after={"key": key, **after},
        )
    return item


# --- preferences ----------------------------------------------------------------------------


def reviewer_preference_set(*, user: Any, reveal_keyframes: bool) -> ReviewerPreference:
    """Choose whether keyframes show unblurred for this user."""
    preference, _ = ReviewerPreference.objects.update_or_create(
        user=user, defaults={"reveal_keyframes": reveal_keyframes}
    )
    return preference
