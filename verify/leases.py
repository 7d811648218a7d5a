"""Job leases: who runs a job, and the heartbeat that keeps it theirs.

A claimed job records its owner (host and pid namespace, worker pid, pool process pid) and a
short lease. A heartbeat thread renews the lease while the job runs, independently of ffmpeg's
progress output, so a slow decoder or a starved CPU keeps its job; a job whose owner is
provably dead, or whose lease ran out, is taken back (``verify.job_states``).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from verify.models import MediaItem

logger = logging.getLogger(__name__)


class JobLost(Exception):
    """This worker no longer holds the job's lease (it was handed back or taken over); stop working on it."""


def lease_expiry() -> datetime:
    """Return when a lease taken or renewed now runs out."""
    return timezone.now() + timedelta(seconds=settings.VERIFY_JOB_LEASE_S)


# --- owners ---------------------------------------------------------------------------------


@functools.cache
def node() -> str:
    """Return this host and pid namespace: the scope in which a pid names one process."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        namespace = "-"
    return f"{socket.gethostname()}/{namespace}"


def lease_owner_here() -> str:
    """Return the owner name of a lease taken by this process: node, worker pid, pool process pid."""
    return f"{node()}:{os.getppid()}:{os.getpid()}"


def worker_owner_prefix(worker_pid: int) -> str:
    """Return the start of the owner names of the jobs a worker's pool runs on this host."""
    return f"{node()}:{worker_pid}:"


def process_alive(pid: int) -> bool:
    """Return False if the process of this pid namespace has exited (or is a zombie)."""
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
    owner_node, _, pids = owner.partition(":")
    if owner_node != node() or not pids:
        return False
    try:
        pool_pid = int(pids.rsplit(":", 1)[-1])
    except ValueError:
        return False
    return not process_alive(pool_pid)


# --- holding a job --------------------------------------------------------------------------


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
