"""Taking jobs back: from a lost pool process, from a worker that is told to stop, and on a timer.

The worker's main process calls ``job_pool_process_lost`` when Celery reports a pool process
lost and ``jobs_hand_back`` when it is told to stop; ``analysis_reconcile`` runs every few
seconds in every worker (``verify.celery``). All of them only move jobs with conditional
UPDATEs (``verify.job_states``), so several reconcilers at once take each job once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from verify.job_states import WORKER_LOST, WORKER_STOPPED, job_interrupt, jobs_abandon, jobs_lost_interrupt
from verify.jobs import analysis_enqueue
from verify.leases import process_alive, worker_owner_prefix
from verify.models import IdempotentRequest, MediaItem

# An interrupted job whose message has not been taken by then is sent again: the requeued
# message may have gone with the worker that held it.
_INTERRUPTED_RESEND_AFTER_S = 10.0
_HAND_BACK_POLL_S = 0.5


def job_pool_process_lost(*, media_item_id: int, pool_pid: int) -> list[int]:
    """Interrupt the item's job if the pool process running it for this worker has died.

    Called in the worker's main process when Celery reports a task's process lost; the message
    itself is requeued by Celery (``reject_on_worker_lost``).
    """
    owner = f"{worker_owner_prefix(os.getpid())}{pool_pid}"
    if process_alive(pool_pid):
        return []
    lost = MediaItem.objects.filter(pk=media_item_id, lease_owner=owner)
    return job_interrupt(lost, reason=WORKER_LOST, resend=False)


def jobs_hand_back(*, grace_s: float) -> list[int]:
    """Hand back the jobs this worker's pool runs: let them finish for ``grace_s``, then interrupt and resend them.

    Called in the worker's main process when it is told to stop. The pool processes notice at
    their next heartbeat that the jobs are no longer theirs, stop their ffmpeg and return, so
    the worker's warm shutdown ends within about a heartbeat after the grace.
    """
    prefix = worker_owner_prefix(os.getpid())
    mine = MediaItem.objects.filter(state=MediaItem.State.RUNNING, lease_owner__startswith=prefix)
    deadline = time.monotonic() + grace_s
    while mine.exists() and time.monotonic() < deadline:
        time.sleep(_HAND_BACK_POLL_S)
    handed_back = job_interrupt(mine, reason=WORKER_STOPPED, resend=True)
    for item_id in handed_back:
        analysis_enqueue(media_item_id=item_id)
    return handed_back


@dataclass(frozen=True)
class ReconcileReport:
    resent: int
    reclaimed: int
    abandoned: int


def analysis_reconcile() -> ReconcileReport:
    """Send again every job the broker may have lost; take back the ones whose worker was lost.

    - running past its lease (the worker or its host stopped), or owned by a process of this
      host that is gone: it becomes ``interrupted`` and is sent again; without attempts left,
      it fails with ``analysis_abandoned``;
    - interrupted and not taken by a worker within a few seconds: it is sent again;
    - queued but never sent (the broker was down) or sent longer than
      ``VERIFY_JOB_RESEND_AFTER_S`` ago (the message may have been lost): it is sent again.

    Every change is a conditional UPDATE, so reconcilers on several workers at once take each
    job once; a duplicate message is harmless because ``analysis_run`` claims before it works.
    """
    now = timezone.now()
    reclaimed_ids = jobs_lost_interrupt(MediaItem.objects.all(), resend=True)
    abandoned = jobs_abandon(MediaItem.objects.filter(state=MediaItem.State.INTERRUPTED))
    resend_before = now - timedelta(seconds=settings.VERIFY_JOB_RESEND_AFTER_S)
    # A fresh upload is sent right after its transaction commits; give that a moment.
    unsent = Q(enqueued_at__isnull=True) & (Q(uploaded_at__lt=now - timedelta(seconds=5)) | Q(pk__in=reclaimed_ids))
    interrupted = Q(state=MediaItem.State.INTERRUPTED) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - timedelta(seconds=_INTERRUPTED_RESEND_AFTER_S))
    )
    stale = MediaItem.objects.filter(
        (Q(state=MediaItem.State.QUEUED) & (unsent | Q(enqueued_at__lt=resend_before))) | interrupted
    )
    resent = 0
    for item_id, state, sent_at in stale.values_list("pk", "state", "enqueued_at")[:500]:
        previous = Q(enqueued_at=sent_at) if sent_at else Q(enqueued_at__isnull=True)
        if MediaItem.objects.filter(previous, pk=item_id, state=state).update(enqueued_at=now):
            resent += analysis_enqueue(media_item_id=item_id)
    IdempotentRequest.objects.filter(created_at__lt=now - timedelta(seconds=settings.VERIFY_IDEMPOTENCY_TTL_S)).delete()
    return ReconcileReport(resent=resent, reclaimed=len(reclaimed_ids), abandoned=abandoned)
