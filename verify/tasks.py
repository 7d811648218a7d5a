"""Celery interfaces to the analysis services: take an id, call one service."""

from celery import Task, shared_task

from verify.services import AnalysisRetry, analysis_run

_RETRY_BACKOFF_S = (10, 60, 300)


@shared_task(bind=True, acks_late=True, max_retries=len(_RETRY_BACKOFF_S))
def analysis_run_task(self: Task, media_item_id: int) -> None:
    """Analyse one media item; safe to deliver more than once."""
    try:
        analysis_run(media_item_id=media_item_id)
    except AnalysisRetry as exc:
        countdown = _RETRY_BACKOFF_S[min(self.request.retries, len(_RETRY_BACKOFF_S) - 1)]
        raise self.retry(exc=exc, countdown=countdown) from exc
