"""The Celery application: configured from Django settings (CELERY_*), tasks autodiscovered.

Every worker also runs the job reconciler on a timer in its main process (no separate beat
process to deploy or to forget): it re-sends queued jobs the broker may have lost, takes back
running jobs whose worker died, and now and then queues the re-hashing of stored originals.
Several workers reconciling at once is safe: each change is a conditional UPDATE.
"""

import logging
import os
import threading
import time
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "verify.settings")

app = Celery("verify")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)
_stop = threading.Event()


def _reconcile_forever() -> None:
    from django.conf import settings
    from django.db import connections

    from verify.jobs import analysis_reconcile, integrity_check_enqueue

    next_integrity_check = time.monotonic()
    while not _stop.wait(settings.VERIFY_RECONCILE_INTERVAL_S):
        try:
            report = analysis_reconcile()
            if report.resent or report.reclaimed or report.abandoned:
                logger.info("reconciler: %s", report)
            if time.monotonic() >= next_integrity_check:
                integrity_check_enqueue()
                next_integrity_check = time.monotonic() + settings.VERIFY_INTEGRITY_CHECK_INTERVAL_S
        except Exception:
            logger.exception("reconciler pass failed; trying again at the next interval")
        finally:
            connections.close_all()  # no connection stays open across a pool fork


@worker_ready.connect
def _start_reconciler(**kwargs: Any) -> None:
    _stop.clear()
    threading.Thread(target=_reconcile_forever, name="verify-reconciler", daemon=True).start()


@worker_shutdown.connect
def _stop_reconciler(**kwargs: Any) -> None:
    _stop.set()
