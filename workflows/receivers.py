"""Reactions of the case workflow to what the evidence domain reports."""

from typing import Any

from django.dispatch import receiver

from verify.signals import analysis_finished, analysis_interrupted, original_integrity_failed
from workflows.events import analysis_interrupted_event
from workflows.models import Case
from workflows.services import case_integrity_failure_record, case_mark_ready_if_analysed


@receiver(analysis_finished, dispatch_uid="workflows.case_ready_on_analysis_finished")
def case_ready_on_analysis_finished(sender: Any, *, case_id: int, media_item_id: int, **kwargs: Any) -> None:
    case_mark_ready_if_analysed(case_id=case_id, media_item_id=media_item_id)


@receiver(original_integrity_failed, dispatch_uid="workflows.case_flag_on_integrity_failure")
def case_flag_on_integrity_failure(
    sender: Any, *, media_item_id: int, case_id: int, expected: str, actual: str, **kwargs: Any
) -> None:
    case_integrity_failure_record(case_id=case_id, media_item_id=media_item_id, expected=expected, actual=actual)


@receiver(analysis_interrupted, dispatch_uid="workflows.case_record_analysis_interrupted")
def case_record_on_analysis_interrupted(
    sender: Any, *, media_item_id: int, case_id: int, attempt: int, max_attempts: int, reason: str, **kwargs: Any
) -> None:
    case_analysis_interrupted_record(
        case_id=case_id, media_item_id=media_item_id, attempt=attempt, max_attempts=max_attempts, reason=reason
    )


def case_analysis_interrupted_record(
    *, case_id: int, media_item_id: int, attempt: int, max_attempts: int, reason: str
) -> None:
    """Record in the case's history that an analysis lost its worker, and whether it will be retried."""
    analysis_interrupted_event(
        case=Case.objects.get(pk=case_id),
        media_item_id=media_item_id,
        attempt=attempt,
        max_attempts=max_attempts,
        reason=reason,
    )
