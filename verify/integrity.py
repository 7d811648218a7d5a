"""Evidence integrity: re-hash stored originals and flag any that no longer match their upload."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils import timezone

from verify.models import MediaItem
from verify.originals import stored_sha256
from verify.signals import original_integrity_failed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntegrityReport:
    files_checked: int
    items_checked: int
    mismatched_item_ids: list[int]


def originals_verify(*, checked_before: Any = None, limit: int | None = None) -> IntegrityReport:
    """Re-hash stored originals and flag every item whose original no longer matches its SHA-256.

    Items whose last check is older than ``checked_before`` (all items when None) are checked,
    each stored file once however many items share it. An item that newly fails sends
    ``original_integrity_failed`` so that its case can be flagged; an item that was flagged
    stays flagged until a check finds the bytes intact again.
    """
    due = MediaItem.objects.exclude(original="")  # a link not fetched (yet) has no original
    if checked_before is not None:
        due = due.filter(Q(integrity_checked_at__isnull=True) | Q(integrity_checked_at__lt=checked_before))
    names = list(due.order_by("original").values_list("original", flat=True).distinct()[:limit])
    items_checked = 0
    mismatched: list[int] = []
    for name in names:
        actual = stored_sha256(name)
        for item in due.filter(original=name).only("pk", "case_id", "sha256", "integrity_mismatch"):
            items_checked += 1
            intact = actual == item.sha256
            MediaItem.objects.filter(pk=item.pk).update(
                integrity_checked_at=timezone.now(), integrity_mismatch=not intact
            )
            if intact:
                continue
            mismatched.append(item.pk)
            logger.error("media %s: stored original %s hashes to %r, not %s", item.pk, name, actual, item.sha256)
            if not item.integrity_mismatch:
                original_integrity_failed.send(
                    sender=MediaItem, media_item_id=item.pk, case_id=item.case_id, expected=item.sha256, actual=actual
                )
    return IntegrityReport(files_checked=len(names), items_checked=items_checked, mismatched_item_ids=mismatched)
