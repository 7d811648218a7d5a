"""Cases and what arrives in them: opening a case, submitted media, finished analyses, downloads."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from verify.intake import media_item_create, media_item_create_from_link
from verify.models import MediaItem
from workflows import events, transitions
from workflows.models import Case, ChecklistItem, Status
from workflows.transitions import Refusal, WorkflowError


def case_create(
    *,
    title: str,
    claim: str,
    created_by: Any,
    source_url: str = "",
    claimed_location: str = "",
    claimed_date: Any = None,
    ocr_languages: str = "",
) -> Case:
    """Open a case for a claim, with its verification checklist."""
    case = Case(
        title=title,
        claim=claim,
        source_url=source_url,
        claimed_location=claimed_location,
        claimed_date=claimed_date,
        ocr_languages=ocr_languages,
        created_by=created_by,
    )
    case.full_clean()
    with transaction.atomic():
        case.save()
        ChecklistItem.objects.bulk_create(ChecklistItem(case=case, key=key) for key in ChecklistItem.Key.values)
        events.case_opened_event(case=case, actor=created_by)
    return case


def case_media_submit(
    *,
    case: Case | None,
    claim_fields: dict[str, Any],
    submitted_by: Any,
    upload: UploadedFile | None = None,
    url: str = "",
    refetch: bool = False,
    mode: str = "",
) -> MediaItem:
    """Add an uploaded file, or a link the worker fetches, to a case; open one from claim_fields if none is given."""
    with transaction.atomic():
        if case is None:
            case = case_create(created_by=submitted_by, **claim_fields)
        else:
            case = _case_evidence_arrive(case=case, actor=submitted_by)
        if upload is not None:
            item = media_item_create(case=case, upload=upload, uploaded_by=submitted_by, mode=mode)
        else:
            item = media_item_create_from_link(case=case, url=url, uploaded_by=submitted_by, mode=mode, refetch=refetch)
        events.media_submitted_event(item=item, actor=submitted_by, duplicate_in_case=_duplicate_in_case(item))
    return item


def _case_evidence_arrive(*, case: Case, actor: Any) -> Case:
    """Refuse new media for a closed case; move an open one where new evidence sends it.

    Runs in the submission's transaction, before the original is stored, with the case row
    locked: a verdict approved at the same moment either lands first (and the media is refused)
    or finds the version changed.
    """
    case = Case.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=case.pk)
    on_hold = case.status == Status.ON_HOLD
    checked = transitions.evidence_check(status=case.held_from if on_hold else case.status)
    if isinstance(checked, Refusal):
        raise WorkflowError(checked.code, checked.message, kind=checked.kind)
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
    events.case_transitioned_event(
        case=case,
        actor=actor,
        before={key: value for key, value in before.items() if key != "held_from" or on_hold},
        after={key: value for key, value in after.items() if key != "held_from" or on_hold},
        move="new_evidence",
        reason=checked.reason,
    )
    return case


def _duplicate_in_case(item: MediaItem) -> int | None:
    # Everyone reading the history may see this case, not necessarily the case holding the
    # earliest copy of the bytes: only an earlier copy in the same case is named.
    if item.sha256 is None:  # a link: its bytes are not known yet
        return None
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
            events.analysis_finished_event(case=case, item=item)
        unfinished = MediaItem.objects.filter(case_id=case_id).exclude(state__in=MediaItem.TERMINAL_STATES)
        if unfinished.exists():
            return False
        moved = Case.objects.filter(pk=case_id, status=Status.NEW).update(
            status=Status.READY_FOR_REVIEW, version=F("version") + 1, updated_at=timezone.now()
        )
        if moved:
            events.case_transitioned_event(
                case=case, actor=None, before={"status": Status.NEW}, after={"status": Status.READY_FOR_REVIEW}
            )
    return bool(moved)


def case_integrity_failure_record(*, case_id: int, media_item_id: int, expected: str, actual: str) -> None:
    """Record in the case's history that a stored original no longer matches its SHA-256."""
    item = MediaItem.objects.get(pk=media_item_id)
    events.integrity_mismatch_event(case=Case.objects.get(pk=case_id), item=item, expected=expected, actual=actual)


def original_download_record(*, media_item: MediaItem, actor: Any) -> None:
    """Record in the case's history that someone downloaded an original file."""
    events.original_downloaded_event(item=media_item, actor=actor)
