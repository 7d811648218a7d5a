"""Analysis jobs: sending them to Celery, claiming them, their leases, and recovering lost ones.

This is the only module that talks to the broker. The database, not Celery, holds a job's
state: a job is claimed with a conditional UPDATE, kept alive by renewing its lease, and taken
back by the reconciler when its lease runs out.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from verify.models import IdempotentRequest, MediaItem
from verify.signals import analysis_finished

logger = logging.getLogger(__name__)

ANALYSIS_TASK = "verify.tasks.analysis_run_task"
INTEGRITY_TASK = "verify.tasks.originals_verify_task"


class AnalysisRetry(Exception):
    """A transient error interrupted the analysis; the item is queued again."""


def analysis_enqueue(*, media_item_id: int) -> bool:
    """Send the analysis job for a media item to the analysis queue; return whether it was sent.

    A broker that cannot be reached is not an error for the caller: the job stays queued in the
    database with no ``enqueued_at`` and the reconciler sends it once the broker is back.
    """
    try:
        current_app.send_task(ANALYSIS_TASK, args=(media_item_id,))
    except Exception:  # kombu raises several types for an unreachable broker
        logger.warning("could not send media %s to the broker; it stays queued for the reconciler", media_item_id)
        MediaItem.objects.filter(pk=media_item_id, state=MediaItem.State.QUEUED).update(enqueued_at=None)
        return False
    MediaItem.objects.filter(pk=media_item_id, state=MediaItem.State.QUEUED).update(enqueued_at=timezone.now())
    return True


def integrity_check_enqueue() -> None:
    """Send the job that re-hashes the originals due for an integrity check."""
    current_app.send_task(INTEGRITY_TASK)


def lease_expiry() -> datetime:
    """Return when a lease taken or renewed now runs out."""
    return timezone.now() + timedelta(seconds=settings.VERIFY_JOB_LEASE_S)


def _claimable() -> Q:
    """Return the jobs a worker may take: queued ones, and running ones whose worker was lost."""
    return Q(state=MediaItem.State.QUEUED) | Q(state=MediaItem.State.RUNNING, lease_expires_at__lt=timezone.now())


def job_claim(*, media_item_id: int, stage: str, progress_percent: int) -> MediaItem | None:
    """Take the item's job for this worker; return the item, or None if it is not ours to run.

    A job that is neither queued nor running on an expired lease is left alone. One that has
    used all its attempts and comes back again (its worker kept dying on it) is failed.
    """
    if _analysis_abandon(MediaItem.objects.filter(_claimable(), pk=media_item_id)):
        return None
    claimed = MediaItem.objects.filter(
        _claimable(), pk=media_item_id, attempts__lt=settings.VERIFY_ANALYSIS_MAX_ATTEMPTS
    ).update(
        state=MediaItem.State.RUNNING,
        lease_expires_at=lease_expiry(),
        stage=stage,
        progress_percent=progress_percent,
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        finished_at=None,
        error_code="",
        error_message="",
        updated_at=timezone.now(),
    )
    if not claimed:
        logger.info("media %s is not queued; nothing to do", media_item_id)
        return None
    return MediaItem.objects.get(pk=media_item_id)


def job_heartbeat(item: MediaItem) -> Callable[[], None]:
    """Return a callable that renews the item's lease, writing at most every quarter lease."""
    every_s = settings.VERIFY_JOB_LEASE_S / 4
    last = [time.monotonic()]

    def beat() -> None:
        if time.monotonic() - last[0] < every_s:
            return
        last[0] = time.monotonic()
        MediaItem.objects.filter(pk=item.pk, state=MediaItem.State.RUNNING).update(lease_expires_at=lease_expiry())

    return beat


def job_requeue(item: MediaItem) -> None:
    """Queue the item again after a transient error; its task sends itself again after a backoff."""
    MediaItem.objects.filter(pk=item.pk).update(
        state=MediaItem.State.QUEUED,
        stage=MediaItem.Stage.WAITING,
        lease_expires_at=None,
        enqueued_at=timezone.now(),
        updated_at=timezone.now(),
    )


def job_finish(item: MediaItem, *, state: str, code: str = "", message: str = "") -> None:
    """Record the terminal state and announce it once the row is committed."""
    with transaction.atomic():
        MediaItem.objects.filter(pk=item.pk).update(
            state=state,
            stage=MediaItem.Stage.DONE,
            progress_percent=100,
            error_code=code,
            error_message=message[:500],
            finished_at=timezone.now(),
            lease_expires_at=None,
            updated_at=timezone.now(),
        )
        logger.info("media %s finished: %s %s", item.pk, state, code)
        transaction.on_commit(
            functools.partial(analysis_finished.send, sender=MediaItem, media_item_id=item.pk, case_id=item.case_id)
        )


def _analysis_abandon(candidates: Any) -> int:
    """Fail the candidate jobs that have no attempts left; return how many were failed."""
    abandoned = 0
    exhausted = candidates.filter(attempts__gte=settings.VERIFY_ANALYSIS_MAX_ATTEMPTS)
    for item in exhausted.only("pk", "case_id", "attempts"):
        with transaction.atomic():
            failed = (
                candidates.filter(pk=item.pk)
                .filter(attempts__gte=settings.VERIFY_ANALYSIS_MAX_ATTEMPTS)
                .update(
                    state=MediaItem.State.FAILED,
                    stage=MediaItem.Stage.DONE,
                    progress_percent=100,
                    error_code="analysis_abandoned",
                    error_message=(
                        f"The analysis was interrupted {item.attempts} times: the worker stopped while processing "
                        "this file each time. The original is kept; an operator can find the cause in the worker log."
                    ),
                    finished_at=timezone.now(),
                    lease_expires_at=None,
                    updated_at=timezone.now(),
                )
            )
            if failed:
                abandoned += 1
                logger.error("media %s finished: failed analysis_abandoned", item.pk)
                transaction.on_commit(
                    functools.partial(
                        analysis_finished.send, sender=MediaItem, media_item_id=item.pk, case_id=item.case_id
                    )
                )
    return abandoned


@dataclass(frozen=True)
class ReconcileReport:
    resent: int
    reclaimed: int
    abandoned: int


def analysis_reconcile() -> ReconcileReport:
    """Send again every job the broker may have lost; fail the ones whose worker kept dying.

    - running past its lease: the worker died. With attempts left, the job is queued again;
      without, it fails with ``analysis_abandoned``;
    - queued but never sent (the broker was down) or sent longer than
      ``VERIFY_JOB_RESEND_AFTER_S`` ago (the message may have been lost): it is sent again.

    Every change is a conditional UPDATE, so reconcilers on several workers at once take each
    job once; a duplicate message is harmless because ``analysis_run`` claims before it works.
    """
    now = timezone.now()
    lost = MediaItem.objects.filter(state=MediaItem.State.RUNNING, lease_expires_at__lt=now)
    abandoned = _analysis_abandon(lost)
    reclaimed_ids = []
    for item_id in lost.filter(attempts__lt=settings.VERIFY_ANALYSIS_MAX_ATTEMPTS).values_list("pk", flat=True):
        moved = lost.filter(pk=item_id).update(
            state=MediaItem.State.QUEUED,
            stage=MediaItem.Stage.WAITING,
            lease_expires_at=None,
            enqueued_at=None,
            updated_at=now,
        )
        if moved:
            logger.warning("media %s: its worker was lost; queued again", item_id)
            reclaimed_ids.append(item_id)
    resend_before = now - timedelta(seconds=settings.VERIFY_JOB_RESEND_AFTER_S)
    # A fresh upload is sent right after its transaction commits; give that a moment.
    unsent = Q(enqueued_at__isnull=True) & (Q(uploaded_at__lt=now - timedelta(seconds=5)) | Q(pk__in=reclaimed_ids))
    stale = MediaItem.objects.filter(Q(state=MediaItem.State.QUEUED) & (unsent | Q(enqueued_at__lt=resend_before)))
    resent = 0
    for item_id, sent_at in stale.values_list("pk", "enqueued_at")[:500]:
        previous = Q(enqueued_at=sent_at) if sent_at else Q(enqueued_at__isnull=True)
        if MediaItem.objects.filter(previous, pk=item_id, state=MediaItem.State.QUEUED).update(enqueued_at=now):
            resent += analysis_enqueue(media_item_id=item_id)
    IdempotentRequest.objects.filter(created_at__lt=now - timedelta(seconds=settings.VERIFY_IDEMPOTENCY_TTL_S)).delete()
    return ReconcileReport(resent=resent, reclaimed=len(reclaimed_ids), abandoned=abandoned)
