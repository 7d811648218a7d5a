"""Reports and evidence packages: requesting one, making it in a worker, and recording each download."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from verify import jobs
from verify.errors import DomainError, Refused
from workflows import events
from workflows.exports import package, report
from workflows.models import Case, Export

EXPORT_TASK = "workflows.tasks.export_generate_task"


def export_request(*, case: Case, kind: str, requested_by: Any, show_graphic: bool = False) -> Export:
    """Queue the making of a report or package of a case the requester may see (the caller checks)."""
    if kind not in Export.Kind.values:
        raise DomainError("invalid_kind", f"Unknown export kind {kind!r}.", kind=Refused.INVALID)
    with transaction.atomic():
        export = Export.objects.create(
            case=case,
            kind=kind,
            requested_by=requested_by,
            show_graphic=show_graphic,
            tsa_urls=list(settings.VERIFY_TSA_URLS),
        )
        transaction.on_commit(functools.partial(jobs.task_send, name=EXPORT_TASK, args=(export.pk,)), robust=True)
    return export


def _progress(export: Export, percent: int) -> None:
    Export.objects.filter(pk=export.pk).update(progress_percent=percent)


def export_generate(*, export_id: int) -> None:
    """Make a queued export (worker side); safe to run twice: only a queued export is taken."""
    if not Export.objects.filter(pk=export_id, state=Export.State.QUEUED).update(state=Export.State.RUNNING):
        return
    export = Export.objects.select_related("case", "requested_by").get(pk=export_id)
    try:
        html = report.report_html(case=export.case, user=export.requested_by, show_graphic=export.show_graphic)
        _progress(export, 5)
        if export.kind == Export.Kind.REPORT_HTML:
            _store_report(export, html.encode(), "report.html")
        else:
            pdf = report.report_pdf(html=html)
            _progress(export, 10)
            if export.kind == Export.Kind.REPORT_PDF:
                _store_report(export, pdf, "report.pdf")
            else:
                package.package_build(export=export, report_pdf=pdf, progress=functools.partial(_progress, export))
                export.size_bytes = len(package.package_stream(export=export))
    except package.PackageError as exc:
        export.state, export.error_message = Export.State.FAILED, str(exc)[:500]
    else:
        export.state = Export.State.SUCCEEDED
    export.progress_percent, export.finished_at = 100, timezone.now()
    with transaction.atomic():
        export.save()
        events.export_generated_event(export=export)


def _store_report(export: Export, data: bytes, filename: str) -> None:
    export.file = default_storage.save(f"exports/{export.pk}/{filename}", ContentFile(data))
    export.size_bytes, export.sha256 = len(data), hashlib.sha256(data).hexdigest()


def export_download_record(*, export: Export, actor: Any) -> None:
    """Record a download of a report or package in the case's history."""
    with transaction.atomic():
        events.export_downloaded_event(export=export, actor=actor)
