"""Write operations on cases."""

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from verify.models import MediaItem
from verify.services import media_item_create
from workflows.models import Case


def case_create(
    *,
    title: str,
    claim: str,
    created_by: Any,
    source_url: str = "",
    claimed_location: str = "",
    claimed_date: Any = None,
) -> Case:
    """Open a case for a claim."""
    case = Case(
        title=title,
        claim=claim,
        source_url=source_url,
        claimed_location=claimed_location,
        claimed_date=claimed_date,
        created_by=created_by,
    )
    case.full_clean()
    case.save()
    return case


def case_media_submit(
    *, case: Case | None, claim_fields: dict[str, Any], upload: UploadedFile, submitted_by: Any, mode: str = ""
) -> MediaItem:
    """Add an uploaded file to a case, opening the case from claim_fields when none is given."""
    with transaction.atomic():
        if case is None:
            case = case_create(created_by=submitted_by, **claim_fields)
        elif case.status == Case.Status.READY_FOR_REVIEW:
            # New evidence arrived: the case is not ready until it is analysed too.
            Case.objects.filter(pk=case.pk).update(status=Case.Status.NEW, updated_at=timezone.now())
        return media_item_create(case=case, upload=upload, uploaded_by=submitted_by, mode=mode)


def case_mark_ready_if_analysed(*, case_id: int) -> bool:
    """Move a new case to ready_for_review once every media item has finished its analysis.

    Runs after each analysis commits; the conditional UPDATE makes concurrent calls safe.
    """
    unfinished = MediaItem.objects.filter(case_id=case_id).exclude(state__in=MediaItem.TERMINAL_STATES)
    if unfinished.exists():
        return False
    moved = Case.objects.filter(pk=case_id, status=Case.Status.NEW).update(
        status=Case.Status.READY_FOR_REVIEW, updated_at=timezone.now()
    )
    return bool(moved)
