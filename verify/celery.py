"""The Celery application: configured from Django settings (CELERY_*), tasks autodiscovered.

Every worker also runs the job reconciler on a timer in its main process (no separate beat
process to deploy or to forget): it re-sends queued jobs the broker may have lost, takes back
running jobs whose worker died, asks the TSAs again for pending timestamps, and now and then
queues the re-hashing of stored originals.
Several workers reconciling at once is safe: each change is a conditional UPDATE.

The main process also reports lost jobs the moment it knows: when a pool process dies under an
analysis (``AnalysisRequest``), and when the worker is told to stop (its running analyses get
``VERIFY_WORKER_STOP_GRACE_S``, then go back to the other workers). docs/recovery.md has the
whole design.
"""

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from multiprocessing.sharedctypes import RawValue
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown, worker_shutting_down
from celery.worker.request import Request
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "verify.settings")
# filesystem:// (the embedded broker) writes each message whole before a worker can see it.
TRANSPORT_ALIASES["filesystem"] = "verify.broker:Transport"

app = Celery("verify")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)
_stop = threading.Event()
# Every use of the database in a worker's main process holds this lock, closes its connections
# before letting go, and a fork of a pool process waits for it. SQLite keeps each process's
# file-lock state inside the C library: a pool process forked while a thread here had the
# database open inherits that state, and every write it tries then fails with "database is
# locked" (seen when a killed pool process was replaced during a reconciler pass).
_database_use = threading.RLock()
os.register_at_fork(
    before=_database_use.acquire, after_in_parent=_database_use.release, after_in_child=_database_use.release
)


@contextlib.contextmanager
def _main_process_database() -> Iterator[None]:
    """Use the database from the worker's main process: under the fork lock, every connection closed after."""
    from django.db import connections

    with _database_use:
        try:
            yield
        finally:
            connections.close_all()


# Set in the worker's main process when it is told to stop; its pool processes, forked from it,
# share the byte. A stopping worker keeps receiving messages until it exits; it must not start them.
_stopping = RawValue("b", 0)


def worker_stopping() -> bool:
    """Return True if this worker was told to stop: a new analysis must go to another worker."""
    return bool(_stopping.value)


def _reconcile_forever() -> None:
    from django.conf import settings

    from verify.jobs import integrity_check_enqueue, timestamps_due_enqueue
    from verify.reconciler import analysis_reconcile

    next_integrity_check = time.monotonic()
    while not _stop.wait(settings.VERIFY_RECONCILE_INTERVAL_S):
        with _main_process_database():
            try:
                report = analysis_reconcile()
                if report.resent or report.reclaimed or report.abandoned:
                    logger.info("reconciler: %s", report)
                timestamps_due_enqueue()
                if time.monotonic() >= next_integrity_check:
                    integrity_check_enqueue()
                    next_integrity_check = time.monotonic() + settings.VERIFY_INTEGRITY_CHECK_INTERVAL_S
            except Exception:
                logger.exception("reconciler pass failed; trying again at the next interval")


@worker_ready.connect
def _start_reconciler(**kwargs: Any) -> None:
    _stop.clear()
    threading.Thread(target=_reconcile_forever, name="verify-reconciler", daemon=True).start()


@worker_shutdown.connect
def _stop_reconciler(**kwargs: Any) -> None:
    _stop.set()


def _hand_back() -> None:
    from django.conf import settings

    from verify.reconciler import jobs_hand_back

    with _main_process_database():
        try:
            handed_back = jobs_hand_back(grace_s=settings.VERIFY_WORKER_STOP_GRACE_S)
            if handed_back:
                logger.warning("stopping: handed back media %s to the other workers", ", ".join(map(str, handed_back)))
        except Exception:
            logger.exception("could not hand back the running jobs; their leases will run out instead")


@worker_shutting_down.connect
def _hand_back_on_stop(**kwargs: Any) -> None:
    _stopping.value = 1
    # Sent from the signal handler: the waiting happens in a thread, while the warm shutdown runs.
    threading.Thread(target=_hand_back, name="verify-hand-back", daemon=True).start()


class AnalysisRequest(Request):
    """An analysis message in the worker's main process: reports at once when its pool process dies.

    Celery then requeues the message (``reject_on_worker_lost``); marking the job interrupted
    first lets the redelivered message take it without waiting for the lease.
    """

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> None:
        pool_pid = self.worker_pid
        if pool_pid:
            from verify.reconciler import job_pool_process_lost

            media_item_id = self.args[0] if self.args else self.kwargs.get("media_item_id")
            with _main_process_database():  # the replacement pool process is forked next
                try:
                    job_pool_process_lost(media_item_id=int(media_item_id), pool_pid=pool_pid)
                except Exception:
                    logger.exception("could not mark media %s interrupted; the reconciler will", media_item_id)
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
