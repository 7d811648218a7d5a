"""Every state change of an analysis job, each one a conditional UPDATE.

queued → running (``job_claim``) → succeeded / failed (``job_finish``), or back to queued after
a transient error (``job_requeue``). A running job whose owner is lost becomes ``interrupted``
(``job_interrupt``) until a worker claims it again, and the case's history says so
(``analysis_interrupted``); one that has used all its attempts fails (``jobs_abandon``). Every
write of a running job names its owner, so a worker that lost its lease can neither renew it
nor record a result.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from verify.jobs import WAITING
from verify.leases import lease_expiry, lease_owner_here, lease_owner_is_dead, node
from verify.models import MediaItem
from verify.signals import analysis_finished, analysis_interrupted

logger = logging.getLogger(__name__)

# Why a running job was taken back, as the case's history records it.
WORKER_LOST = "worker_lost"
LEASE_EXPIRED = "lease_expired"
WORKER_STOPPED = "worker_stopped"
_INTERRUPTION_REASONS = {
    WORKER_LOST: "The worker process running the analysis stopped (killed, or out of memory).",
    LEASE_EXPIRED: "The worker running the analysis stopped answering.",
    WORKER_STOPPED: "The worker running the analysis was shut down.",
}


class AnalysisRetry(Exception):
    """A transient error interrupted the analysis; the item is queued again."""


def job_claim(*, media_item_id: int, stage: str, progress_percent: int) -> MediaItem | None:
    """Take the item's job for this worker process; return the item, or None if it is not ours to run.

    A running job is taken over only when its owner is lost: its lease ran out, or its process
    is provably dead. One that has used all its attempts and comes back again (its worker kept
    dying on it) is failed.
    """
    jobs_lost_interrupt(MediaItem.objects.filter(pk=media_item_id))
    waiting = MediaItem.objects.filter(pk=media_item_id, state__in=WAITING)
    if jobs_abandon(waiting):
        return None
    claimed = waiting.filter(attempts__lt=settings.VERIFY_ANALYSIS_MAX_ATTEMPTS).update(
        state=MediaItem.State.RUNNING,
        lease_expires_at=lease_expiry(),
        lease_owner=lease_owner_here(),
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
        logger.info("media %s is not waiting for a worker; nothing to do", media_item_id)
        return None
    return MediaItem.objects.get(pk=media_item_id)


def job_requeue(item: MediaItem) -> None:
    """Queue the item again after a transient error; its task sends itself again after a backoff."""
    MediaItem.objects.filter(pk=item.pk, state=MediaItem.State.RUNNING, lease_owner=item.lease_owner).update(
        state=MediaItem.State.QUEUED,
        stage=MediaItem.Stage.WAITING,
        lease_expires_at=None,
        lease_owner="",
        enqueued_at=timezone.now(),
        updated_at=timezone.now(),
    )


def job_finish(item: MediaItem, *, state: str, code: str = "", message: str = "") -> bool:
    """Record the terminal state and announce it once the row is committed; return whether it was ours.

    A worker that lost the job's lease records nothing: the job's new owner does.
    """
    with transaction.atomic():
        finished = MediaItem.objects.filter(
            pk=item.pk, state=MediaItem.State.RUNNING, lease_owner=item.lease_owner
        ).update(
            state=state,
            stage=MediaItem.Stage.DONE,
            progress_percent=100,
            error_code=code,
            error_message=message[:500],
            finished_at=timezone.now(),
            lease_expires_at=None,
            lease_owner="",
            updated_at=timezone.now(),
        )
        if not finished:
            logger.warning("media %s: this worker no longer holds the job; its result (%s) is dropped", item.pk, state)
            return False
        logger.info("media %s finished: %s %s", item.pk, state, code)
        transaction.on_commit(
            functools.partial(analysis_finished.send, sender=MediaItem, media_item_id=item.pk, case_id=item.case_id)
        )
    return True


def job_interrupt(candidates: Any, *, reason: str, resend: bool) -> list[int]:
    """Move the running candidates to ``interrupted``; return their ids.

    Each move is a conditional UPDATE on the owner read a moment before, so two workers taking
    the same job back move it once, and a job that finished meanwhile is left alone. With
    ``resend``, the job is marked unsent and the reconciler (or the caller) sends it again;
    without, its message is already on its way back (Celery requeued it).
    """
    interrupted = []
    now = timezone.now()
    for item in candidates.filter(state=MediaItem.State.RUNNING).only("pk", "case_id", "attempts", "lease_owner"):
        changes: dict[str, Any] = {
            "state": MediaItem.State.INTERRUPTED,
            "stage": MediaItem.Stage.WAITING,
            "progress_percent": 0,
            "lease_expires_at": None,
            "lease_owner": "",
            "updated_at": now,
        }
        if resend:
            changes["enqueued_at"] = None
        with transaction.atomic():
            moved = MediaItem.objects.filter(
                pk=item.pk, state=MediaItem.State.RUNNING, lease_owner=item.lease_owner
            ).update(**changes)
            if not moved:
                continue
            logger.warning("media %s: analysis interrupted (%s) in attempt %s", item.pk, reason, item.attempts)
            transaction.on_commit(
                functools.partial(
                    analysis_interrupted.send,
                    sender=MediaItem,
                    media_item_id=item.pk,
                    case_id=item.case_id,
                    attempt=item.attempts,
                    max_attempts=settings.VERIFY_ANALYSIS_MAX_ATTEMPTS,
                    reason=_INTERRUPTION_REASONS[reason],
                )
            )
        interrupted.append(item.pk)
    return interrupted


def jobs_lost_interrupt(candidates: Any, *, resend: bool = False) -> list[int]:
    """Interrupt the running candidates whose lease ran out or whose process is provably dead."""
    running = candidates.filter(state=MediaItem.State.RUNNING)
    expired = job_interrupt(running.filter(lease_expires_at__lt=timezone.now()), reason=LEASE_EXPIRED, resend=resend)
    dead = [
        pk
        for pk, owner in running.filter(lease_owner__startswith=f"{node()}:").values_list("pk", "lease_owner")
        if lease_owner_is_dead(owner)
    ]
    return expired + job_interrupt(running.filter(pk__in=dead), reason=WORKER_LOST, resend=resend)


def jobs_abandon(candidates: Any) -> int:
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
                    lease_owner="",
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
