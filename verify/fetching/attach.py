"""Fetched bytes become originals: stored write-once under their SHA-256, like an upload's.

The item submitted with the link takes the post's first file; each further picture or clip of an
album becomes a media item of its own in the same case, analysed like any other.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import filetype
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from verify import jobs, sniffing, timestamps
from verify.fetching.models import SourcePost
from verify.intake import escape_client_filename
from verify.models import MediaItem
from verify.originals import HASH_CHUNK_BYTES, original_storage_name
from verify.safeguards import AnalysisFailure


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stored_original(path: Path) -> dict[str, Any]:
    """Store the file as an original (once per SHA-256); return the item fields that describe it."""
    with path.open("rb") as handle:
        head = handle.read(max(sniffing.SNIFF_BYTES, 8192))
    sniffed = sniffing.content_sniff(head[: sniffing.SNIFF_BYTES])
    if not sniffed.accepted:
        raise AnalysisFailure(
            "unsupported_content", f"The fetched file was refused: {sniffing.rejection_message(sniffed.kind)}"
        )
    sha256 = _file_sha256(path)
    name = original_storage_name(sha256)
    if not default_storage.exists(name):
        with path.open("rb") as handle:
            name = default_storage.save(name, File(handle))
    kind = filetype.guess(head)
    return {
        "original": name,
        "sha256": sha256,
        "size_bytes": path.stat().st_size,
        "mime_type": kind.mime if kind else "application/octet-stream",
        "original_filename": escape_client_filename(path.name.split("-", 1)[-1]),
    }


def _item_fill(item_id: int, values: dict[str, Any]) -> None:
    """Give a url-born item its original, naming the earliest item with the same bytes; in the caller's transaction."""
    earliest = MediaItem.objects.filter(sha256=values["sha256"]).exclude(pk=item_id).order_by("uploaded_at", "id")
    MediaItem.objects.filter(pk=item_id).update(**values, duplicate_of=earliest.first())
    item = MediaItem.objects.get(pk=item_id)
    for pending in timestamps.timestamps_request_for(media_item=item):
        transaction.on_commit(functools.partial(jobs.timestamp_enqueue, timestamp_id=pending.pk), robust=True)


def _sibling_create(item: MediaItem, post: SourcePost, position: int, values: dict[str, Any]) -> None:
    """Add a further file of the album to the item's case and queue its analysis; in the caller's transaction."""
    sibling = MediaItem.objects.create(
        case_id=item.case_id,
        uploaded_by_id=item.uploaded_by_id,
        mode=item.mode,
        source_post=post,
        source_position=position,
        **{k: v for k, v in values.items() if k != "sha256"},
    )
    _item_fill(sibling.pk, values)
    transaction.on_commit(functools.partial(jobs.analysis_enqueue, media_item_id=sibling.pk), robust=True)


def originals_attach(*, item: MediaItem, post: SourcePost, paths: list[Path]) -> None:
    """Store the fetched files; the first becomes the item's original, the rest album siblings in its case.

    The item's original and its siblings are written in one transaction, so an attempt that ran
    again after a lost worker either finds the item filled (and fetches nothing) or starts over.
    """
    stored = [_stored_original(path) for path in paths]
    with transaction.atomic():
        MediaItem.objects.filter(pk=item.pk).update(source_post=post, source_position=0 if len(paths) > 1 else None)
        _item_fill(item.pk, stored[0])
        for position, values in enumerate(stored[1:], start=1):
            _sibling_create(item, post, position, values)


def originals_reuse(*, item: MediaItem, pending: SourcePost, earlier: SourcePost) -> None:
    """Give the item the originals of an earlier fetch of the same post, without fetching anything."""
    columns = ("original", "sha256", "size_bytes", "mime_type", "original_filename")
    files = MediaItem.objects.filter(source_post=earlier, sha256__isnull=False).order_by("source_position", "id")
    seen: dict[int | None, dict[str, Any]] = {}
    for row in files.values("source_position", *columns):
        seen.setdefault(row["source_position"], {name: row[name] for name in columns})
    ordered = list(seen.values())
    if not ordered:
        raise AnalysisFailure("source_unavailable", "The earlier fetch of this post kept no file.")
    with transaction.atomic():
        MediaItem.objects.filter(pk=item.pk).update(
            source_post=earlier, source_position=0 if len(ordered) > 1 else None
        )
        _item_fill(item.pk, ordered[0])
        for position, values in enumerate(ordered[1:], start=1):
            _sibling_create(item, earlier, position, values)
        if pending.pk != earlier.pk:
            pending.delete()
