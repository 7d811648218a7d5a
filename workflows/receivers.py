"""Reactions of the case workflow to what the evidence domain reports."""

from typing import Any

from django.dispatch import receiver

from verify.signals import analysis_finished, original_integrity_failed
from workflows.services import case_integrity_failure_record, case_mark_ready_if_analysed


@receiver(analysis_finished, dispatch_uid="workflows.case_ready_on_analysis_finished")
def case_ready_on_analysis_finished(sender: Any, *, case_id: int, media_item_id: int, **kwargs: Any) -> None:
    case_mark_ready_if_analysed(case_id=case_id, media_item_id=media_item_id)


@receiver(original_integrity_failed, dispatch_uid="workflows.case_flag_on_integrity_failure")
def case_flag_on_integrity_failure(
    sender: Any, *, media_item_id: int, case_id: int, expected: str, actual: str, **kwargs: Any
) -> None:
    case_integrity_failure_record(case_id=case_id, media_item_id=media_item_id, expected=expected, actual=actual)
