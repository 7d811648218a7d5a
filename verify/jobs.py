"""Sending jobs to Celery: the only module that talks to the broker.

A job's state lives in the database (``verify.job_states``), not in the broker: a message that
cannot be sent leaves the job waiting with no ``enqueued_at``, and the reconciler
(``verify.reconciler``) sends it once the broker is back.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import current_app
from django.utils import timezone

from verify.models import MediaItem
from verify.timestamps import timestamps_due

logger = logging.getLogger(__name__)

ANALYSIS_TASK = "verify.tasks.analysis_run_task"
INTEGRITY_TASK = "verify.tasks.originals_verify_task"
TIMESTAMP_TASK = "verify.tasks.original_timestamp_task"
# The states of a job that waits for a worker.
WAITING = (MediaItem.State.QUEUED, MediaItem.State.INTERRUPTED)


def analysis_enqueue(*, media_item_id: int) -> bool:
    """Send the analysis job for a media item to the analysis queue; return whether it was sent.

    A broker that cannot be reached is not an error for the caller: the job stays waiting in the
    database with no ``enqueued_at`` and the reconciler sends it once the broker is back.
    """
    waiting = MediaItem.objects.filter(pk=media_item_id, state__in=WAITING)
    try:
        current_app.send_task(ANALYSIS_TASK, args=(media_item_id,))
    except Exception:  # kombu raises several types for an unreachable broker
        logger.warning("could not send media %s to the broker; it stays queued for the reconciler", media_item_id)
        waiting.update(enqueued_at=None)
        return False
    waiting.update(enqueued_at=timezone.now())
    return True


def integrity_check_enqueue() -> None:
    """Send the job that re-hashes the originals due for an integrity check."""
    current_app.send_task(INTEGRITY_TASK)


def task_send(*, name: str, args: tuple[Any, ...]) -> bool:
    """Send a task of another app by name; return whether the broker took it (the database keeps the job)."""
    try:
        current_app.send_task(name, args=args)
    except Exception:
        logger.warning("could not send %s%r to the broker", name, args, exc_info=True)
        return False
    return True


def timestamp_enqueue(*, timestamp_id: int) -> None:
    """Send the job that asks a TSA for a pending timestamp; a broker that is down leaves it to the reconciler."""
    try:
        current_app.send_task(TIMESTAMP_TASK, args=(timestamp_id,))
    except Exception:
        logger.warning("could not send timestamp %s to the broker; the reconciler will", timestamp_id, exc_info=True)


def timestamps_due_enqueue(*, now: datetime | None = None) -> int:
    """Send the jobs of the pending timestamps whose next attempt has come; return how many."""
    due = timestamps_due(now=now)
    for timestamp_id in due:
        timestamp_enqueue(timestamp_id=timestamp_id)
    return len(due)
