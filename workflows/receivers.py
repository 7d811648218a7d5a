"""Reactions of the case workflow to what the evidence domain reports."""

from typing import Any

from django.dispatch import receiver

from verify.signals import analysis_finished
from workflows.services import case_mark_ready_if_analysed


@receiver(analysis_finished, dispatch_uid="workflows.case_ready_on_analysis_finished")
def case_ready_on_analysis_finished(sender: Any, *, case_id: int, **kwargs: Any) -> None:
    case_mark_ready_if_analysed(case_id=case_id)
