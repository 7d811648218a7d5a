"""Celery interfaces to the analysis services: take an id, call one service."""

from datetime import timedelta

from celery import Task, shared_task
from celery.exceptions import Reject
from django.conf import settings
from django.utils import timezone

from verify.analysis import analysis_run
from verify.celery import worker_stopping
from verify.integrity import originals_verify
from verify.job_states import AnalysisRetry
from verify.timestamps import timestamp_obtain

_RETRY_BACKOFF_S = (10, 60, 300)
_INTEGRITY_BATCH_FILES = 200


@shared_task(bind=True, acks_late=True, max_retries=len(_RETRY_BACKOFF_S), Request="verify.celery:AnalysisRequest")
def analysis_run_task(self: Task, media_item_id: int) -> None:
    """Analyse one media item; safe to deliver more than once."""
    if worker_stopping():  # this worker hands its jobs back; the message goes to another one
        raise Reject("the worker is stopping", requeue=True)
    try:
        analysis_run(media_item_id=media_item_id)
    except AnalysisRetry as exc:
        countdown = _RETRY_BACKOFF_S[min(self.request.retries, len(_RETRY_BACKOFF_S) - 1)]
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(acks_late=True)
def originals_verify_task() -> None:
    """Re-hash the originals not checked within the integrity interval, a batch at a time."""
    due_before = timezone.now() - timedelta(seconds=settings.VERIFY_INTEGRITY_CHECK_INTERVAL_S)
    report = originals_verify(checked_before=due_before, limit=_INTEGRITY_BATCH_FILES)
    if report.files_checked == _INTEGRITY_BATCH_FILES:  # more are due: keep going without waiting a day
        originals_verify_task.delay()


@shared_task(acks_late=True)
def original_timestamp_task(timestamp_id: int) -> None:
    """Ask a TSA for one pending timestamp; a TSA that does not answer is asked again by the reconciler."""
    timestamp_obtain(timestamp_id=timestamp_id)
