"""Intake: accept an uploaded original into a case, stored once, and queue its analysis."""

from __future__ import annotations

import functools
from typing import Any

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from verify import jobs, sniffing, timestamps
from verify.fetching.models import SourcePost
from verify.models import MediaItem
from verify.originals import file_sha256, original_storage_name

# Bidirectional overrides and isolates can make "cod.exe" read as "exe.doc" on screen.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def escape_client_filename(name: str) -> str:
    """Return the client's file name with control and bidi characters written as escapes.

    The name is metadata for display only; it never becomes a path.
    """
    escaped = "".join(
        f"\\u{ord(char):04x}" if (not char.isprintable() or char in _BIDI_CONTROLS) else char for char in name
    )
    return escaped[:255]


def media_item_create(*, case: Any, upload: UploadedFile, uploaded_by: Any, mode: str = "") -> MediaItem:
    """Store an uploaded original write-once, record it in the case and queue its analysis.

    The SHA-256 and the content check are the ones made while the upload streamed
    (``HashingUploadHandler``) when it went through the API; other callers get them here.
    Identical bytes are stored once and the new item points at the earliest one.
    """
    head = _head(upload)
    if not getattr(upload, "sniffed", False):
        _content_check(head)
    sha256 = getattr(upload, "sha256", None) or file_sha256(upload)
    name = original_storage_name(sha256)
    if not default_storage.exists(name):
        name = default_storage.save(name, upload)
    kind = filetype.guess(head)
    earliest = MediaItem.objects.filter(sha256=sha256).order_by("uploaded_at", "id").first()
    with transaction.atomic():
        item = MediaItem.objects.create(
            case=case,
            original=name,
            original_filename=escape_client_filename(upload.name or ""),
            size_bytes=upload.size or 0,
            sha256=sha256,
            mime_type=kind.mime if kind else "application/octet-stream",
            duplicate_of=earliest,
            uploaded_by=uploaded_by,
            mode=mode or settings.VERIFY_ANALYSIS_MODE,
        )
        transaction.on_commit(functools.partial(jobs.analysis_enqueue, media_item_id=item.pk), robust=True)
        for pending in timestamps.timestamps_request_for(media_item=item):
            transaction.on_commit(functools.partial(jobs.timestamp_enqueue, timestamp_id=pending.pk), robust=True)
    return item


def _head(upload: File[Any]) -> bytes:
    upload.seek(0)
    head = upload.read(max(sniffing.SNIFF_BYTES, 8192))
    upload.seek(0)
    return head


def _content_check(head: bytes) -> None:
    sniffed = sniffing.content_sniff(head[: sniffing.SNIFF_BYTES])
    if not sniffed.accepted:
        message = sniffing.rejection_message(sniffed.kind)
        raise ValidationError({"file": [ValidationError(message, code="unsupported_content")]})


def media_item_create_from_link(
    *, case: Any, url: str, uploaded_by: Any, mode: str = "", refetch: bool = False
) -> MediaItem:
    """Record a link to fetch in a case and queue the job that fetches and then analyses it.

    The item has no original and no SHA-256 until the worker's fetching stage stores the bytes
    (``verify.fetching``); the post it came from is a ``SourcePost``.
    """
    with transaction.atomic():
        post = SourcePost.objects.create(submitted_url=url, refetch=refetch, requested_by=uploaded_by)
        item = MediaItem.objects.create(
            case=case, original="", size_bytes=0, sha256=None, source_post=post, uploaded_by=uploaded_by,
            mode=mode or settings.VERIFY_ANALYSIS_MODE,
        )  # fmt: skip
        transaction.on_commit(functools.partial(jobs.analysis_enqueue, media_item_id=item.pk), robust=True)
    return item
