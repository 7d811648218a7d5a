"""Analysis jobs: sending them to Celery, claiming them, their leases, and recovering lost ones.

This is the only module that talks to the broker. The database, not Celery, holds a job's
state: a job is claimed with a conditional UPDATE that records its owner (host, worker process,
pool process), kept alive by a heartbeat thread that renews a short lease, and taken back when
its owner is lost:

- at once, when the owner is a process of this host that no longer exists (the pool process was
  killed; Celery redelivers the message, ``reject_on_worker_lost``);
- after the lease, when nobody can tell (another host went away, or stopped answering);
- after ``VERIFY_WORKER_STOP_GRACE_S``, when its worker was told to stop.

Between losing its worker and running again a job is ``interrupted``, and the case's history
says so (``analysis_interrupted``). Every write of a running job names its owner, so a worker
that lost its lease can neither renew it nor record a result.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from verify.models import IdempotentRequest, MediaItem
from verify.signals import analysis_finished, analysis_interrupted
from verify.timestamps import timestamps_due

logger = logging.getLogger(__name__)

ANALYSIS_TASK = "verify.tasks.analysis_run_task"
INTEGRITY_TASK = "verify.tasks.originals_verify_task"
TIMESTAMP_TASK = "verify.tasks.original_timestamp_task"

# Why a running job was taken back, as the case's history records it.
WORKER_LOST = "worker_lost"
LEASE_EXPIRED = "lease_expired"
WORKER_STOPPED = "worker_stopped"
_INTERRUPTION_REASONS = {
    WORKER_LOST: "The worker process running the analysis stopped (killed, or out of memory).",
    LEASE_EXPIRED: "The worker running the analysis stopped answering.",
    WORKER_STOPPED: "The worker running the analysis was shut down.",
}
# An interrupted job whose message has not been taken by then is sent again: the requeued
# message may have gone with the worker that held it.
_INTERRUPTED_RESEND_AFTER_S = 10.0
_HAND_BACK_POLL_S = 0.5
# The states of a job that waits for a worker.
_WAITING = (MediaItem.State.QUEUED, MediaItem.State.INTERRUPTED)


class AnalysisRetry(Exception):
    """A transient error interrupted the analysis; the item is queued again."""


class JobLost(Exception):
    """This worker no longer holds the job's lease (it was handed back or taken over); stop working on it."""


def analysis_enqueue(*, media_item_id: int) -> bool:
    """Send the analysis job for a media item to the analysis queue; return whether it was sent.

    A broker that cannot be reached is not an error for the caller: the job stays waiting in the
    database with no ``enqueued_at`` and the reconciler sends it once the broker is back.
    """
    waiting = MediaItem.objects.filter(pk=media_item_id, state__in=_WAITING)
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


def lease_expiry() -> datetime:
    """Return when a lease taken or renewed now runs out."""
    return timezone.now() + timedelta(seconds=settings.VERIFY_JOB_LEASE_S)


# --- owners ---------------------------------------------------------------------------------


@functools.cache
def _node() -> str:
    """Return this host and pid namespace: the scope in which a pid names one process."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        namespace = "-"
    return f"{socket.gethostname()}/{namespace}"


def lease_owner_here() -> str:
    """Return the owner name of a lease taken by this process: node, worker pid, pool process pid."""
    return f"{_node()}:{os.getppid()}:{os.getpid()}"


def _worker_prefix(worker_pid: int) -> str:
    return f"{_node()}:{worker_pid}:"


def _process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: assume it lives, the lease decides
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}  # a zombie no longer runs anything


def lease_owner_is_dead(owner: str) -> bool:
    """Return True if the owner is a process of this host's pid namespace that no longer runs.

    An owner on another host cannot be judged from here: its lease decides.
    """
    node, _, pids = owner.partition(":")
    if node != _node() or not pids:
        return False
    try:
        pool_pid = int(pids.rsplit(":", 1)[-1])
    except ValueError:
        return False
    return not _process_alive(pool_pid)


# --- claiming and holding a job -------------------------------------------------------------


def job_claim(*, media_item_id: int, stage: str, progress_percent: int) -> MediaItem | None:
    """Take the item's job for this worker process; return the item, or None if it is not ours to run.

    A running job is taken over only when its owner is lost: its lease ran out, or its process
    is provably dead. One that has used all its attempts and comes back again (its worker kept
    dying on it) is failed.
    """
    _interrupt_lost(MediaItem.objects.filter(pk=media_item_id))
    waiting = MediaItem.objects.filter(pk=media_item_id, state__in=_WAITING)
    if _analysis_abandon(waiting):
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


# The lease-lost flags of the jobs this process runs, by media item id.
_lost: dict[int, threading.Event] = {}


@contextmanager
def job_lease(item: MediaItem) -> Iterator[None]:
    """Hold the item's lease while the block runs: a thread renews it every ``VERIFY_JOB_HEARTBEAT_S``.

    The heartbeat does not depend on ffmpeg's progress output or on the pipeline reaching its
    next stage, so a slow decoder or a starved CPU does not lose the job. A renewal that finds
    the job no longer ours (handed back or taken over) flags it; ``job_lease_check`` then raises
    ``JobLost`` in the pipeline. A database error skips one beat: the lease outlasts several.
    """
    if transaction.get_connection().in_atomic_block:
        # Inside a transaction (tests, eager tasks) no other connection sees the claim, so a
        # heartbeat thread could neither renew it nor wait for the lock; the transaction holds it.
        yield
        return
    lost = threading.Event()
    stop = threading.Event()

    def renew() -> None:
        try:
            while not stop.wait(settings.VERIFY_JOB_HEARTBEAT_S):
                try:
                    renewed = MediaItem.objects.filter(
                        pk=item.pk, state=MediaItem.State.RUNNING, lease_owner=item.lease_owner
                    ).update(lease_expires_at=lease_expiry())
                except DatabaseError:
                    logger.warning("media %s: could not renew the lease; trying again", item.pk, exc_info=True)
                    continue
                if not renewed:
                    logger.warning("media %s: this worker no longer holds the job; stopping it", item.pk)
                    lost.set()
                    return
        finally:
            connections.close_all()  # this thread's connections only

    _lost[item.pk] = lost
    heartbeat = threading.Thread(target=renew, name=f"verify-lease-{item.pk}", daemon=True)
    heartbeat.start()
    try:
        yield
    finally:
        stop.set()
        heartbeat.join(timeout=settings.VERIFY_JOB_HEARTBEAT_S)  # a beat stuck on the database ends on its own
        _lost.pop(item.pk, None)


def job_lease_check(item: MediaItem) -> None:
    """Raise JobLost if this process no longer holds the item's lease."""
    lost = _lost.get(item.pk)
    if lost is not None and lost.is_set():
        raise JobLost(f"media {item.pk} was taken from this worker")


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


# --- taking jobs back -----------------------------------------------------------------------


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


def _interrupt_lost(candidates: Any, *, resend: bool = False) -> list[int]:
    """Interrupt the running candidates whose lease ran out or whose process is provably dead."""
    running = candidates.filter(state=MediaItem.State.RUNNING)
    expired = job_interrupt(running.filter(lease_expires_at__lt=timezone.now()), reason=LEASE_EXPIRED, resend=resend)
    dead = [
        pk
        for pk, owner in running.filter(lease_owner__startswith=f"{_node()}:").values_list("pk", "lease_owner")
        if lease_owner_is_dead(owner)
    ]
    return expired + job_interrupt(running.filter(pk__in=dead), reason=WORKER_LOST, resend=resend)


def job_pool_process_lost(*, media_item_id: int, pool_pid: int) -> list[int]:
    """Interrupt the item's job if the pool process running it for this worker has died.

    Called in the worker's main process when Celery reports a task's process lost; the message
    itself is requeued by Celery (``reject_on_worker_lost``).
    """
    owner = f"{_worker_prefix(os.getpid())}{pool_pid}"
    if _process_alive(pool_pid):
        return []
    lost = MediaItem.objects.filter(pk=media_item_id, lease_owner=owner)
    return job_interrupt(lost, reason=WORKER_LOST, resend=False)


def jobs_hand_back(*, grace_s: float) -> list[int]:
    """Hand back the jobs this worker's pool runs: let them finish for ``grace_s``, then interrupt and resend them.

    Called in the worker's main process when it is told to stop. The pool processes notice at
    their next heartbeat that the jobs are no longer theirs, stop their ffmpeg and return, so
    the worker's warm shutdown ends within about a heartbeat after the grace.
    """
    mine = MediaItem.objects.filter(state=MediaItem.State.RUNNING, lease_owner__startswith=_worker_prefix(os.getpid()))
    deadline = time.monotonic() + grace_s
    while mine.exists() and time.monotonic() < deadline:
        time.sleep(_HAND_BACK_POLL_S)
    handed_back = job_interrupt(mine, reason=WORKER_STOPPED, resend=True)
    for item_id in handed_back:
        analysis_enqueue(media_item_id=item_id)
    return handed_back


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
    reclaimed_ids = _interrupt_lost(MediaItem.objects.all(), resend=True)
    abandoned = _analysis_abandon(MediaItem.objects.filter(state=MediaItem.State.INTERRUPTED))
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
