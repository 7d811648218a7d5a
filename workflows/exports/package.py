"""The evidence package: its parts, its manifest, and the ZIP streamed from them.

A worker writes the small parts (report, audit trail, timestamps, README, manifest and the
manifest's timestamps) under ``exports/<id>/`` and records every entry of the package as
[path in the ZIP, stored name]. The download streams the ZIP from those entries, originals
stored (not deflated) and read a chunk at a time, so the web process never holds a package.
The manifest lists the SHA-256 and size of every file but itself and its timestamps; each
original is hashed again while the manifest is written, and a mismatch stops the package.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import zipstream
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils import timezone

import verify
from verify.models import Keyframe, MediaItem
from verify.originals import HASH_CHUNK_BYTES
from verify.timestamps import digest_timestamp, tsa_ca_pem
from workflows.audit_trail import audit_entries
from workflows.models import Case, Export

FORMAT = "verify-evidence-package/1"
MANIFEST = "manifest.json"
README_TEMPLATE = "workflows/package_readme.txt"


class PackageError(Exception):
    """The package cannot be made truthfully (an original no longer matches its SHA-256)."""


def _stored_hash_and_size(name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with default_storage.open(name, "rb") as stored:
        for chunk in iter(lambda: stored.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _tool_versions() -> dict[str, str]:
    from verify.derivatives import ffmpeg_version
    from verify.exif_reader import exiftool_version

    versions = {"service": f"verify {verify.__version__}"}
    for tool, read in (("ffmpeg", ffmpeg_version), ("exiftool", exiftool_version)):
        try:
            versions[tool] = read()
        except Exception:  # noqa: BLE001 - a missing tool is recorded as such, not an error
            versions[tool] = "not installed"
    return versions


def case_snapshot(case: Case) -> dict[str, Any]:
    """Return the case as the manifest records it: claim, status, verdict, checklist, media items."""
    return {
        "id": case.pk,
        "title": case.title,
        "claim": case.claim,
        "source_url": case.source_url,
        "claimed_location": case.claimed_location,
        "claimed_date": case.claimed_date.isoformat() if case.claimed_date else None,
        "status": case.status,
        "verdict": case.verdict,
        "verdict_rationale": case.verdict_rationale,
        "verdict_proposed_by": case.verdict_proposed_by.get_username() if case.verdict_proposed_by else None,
        "verdict_approved_by": case.verdict_approved_by.get_username() if case.verdict_approved_by else None,
        "checklist": [
            {"key": c.key, "state": c.state, "finding": c.finding, "latitude": c.latitude, "longitude": c.longitude}
            for c in case.checklist.order_by("id")
        ],
        "media_items": [
            {
                "id": item.pk,
                "sha256": item.sha256,
                "size_bytes": item.size_bytes,
                "original_filename": item.original_filename,
                "mime_type": item.mime_type,
                "uploaded_at": item.uploaded_at.isoformat(),
                "uploaded_by": item.uploaded_by.get_username(),
                "analysis_state": item.state,
                "ffmpeg_version": item.ffmpeg_version,
            }
            for item in MediaItem.objects.filter(case=case).select_related("uploaded_by").order_by("uploaded_at", "id")
        ],
    }


class _Parts:
    """The files of a package being made: stored parts and existing stored files, with hashes."""

    def __init__(self, export: Export) -> None:
        self.folder = f"exports/{export.pk}"
        self.entries: list[list[str]] = []
        self.files: list[dict[str, Any]] = []

    def add_bytes(self, path: str, data: bytes, *, kind: str, **extra: Any) -> None:
        name = default_storage.save(f"{self.folder}/{path}", ContentFile(data))
        self._record(path, name, hashlib.sha256(data).hexdigest(), len(data), kind, extra)

    def add_stored(self, path: str, name: str, *, kind: str, expected_sha256: str = "", **extra: Any) -> None:
        sha256, size = _stored_hash_and_size(name)
        if expected_sha256 and sha256 != expected_sha256:
            raise PackageError(f"{path}: the stored file no longer hashes to its SHA-256 {expected_sha256}")
        self._record(path, name, sha256, size, kind, extra)

    def add_unlisted(self, path: str, data: bytes) -> None:
        name = default_storage.save(f"{self.folder}/{path}", ContentFile(data))
        self.entries.append([path, name])

    @property
    def paths(self) -> set[str]:
        return {entry[0] for entry in self.entries}

    def _record(self, path: str, name: str, sha256: str, size: int, kind: str, extra: Any) -> None:
        self.entries.append([path, name])
        self.files.append({"path": path, "sha256": sha256, "size_bytes": size, "kind": kind, **extra})


def package_build(*, export: Export, report_pdf: bytes, progress: Callable[[int], None]) -> Export:
    """Write the parts of a package for the export's case and record its entries (worker side)."""
    case = export.case
    parts = _Parts(export)
    items = list(MediaItem.objects.filter(case=case).prefetch_related("timestamps").order_by("uploaded_at", "id"))
    pending: list[dict[str, Any]] = []
    tsa_numbers: dict[str, int] = {}
    for index, item in enumerate(items):
        # The same bytes submitted twice are one file; a link that was never fetched has none.
        if item.sha256 is not None and f"originals/{item.sha256}" not in parts.paths:
            parts.add_stored(
                f"originals/{item.sha256}",
                item.original.name,
                kind="original",
                expected_sha256=item.sha256,
                media_item=item.pk,
            )
        if item.contact_sheet:
            parts.add_stored(
                f"derived/media-{item.pk}/contact-sheet.jpg",
                item.contact_sheet.name,
                kind="derived",
                media_item=item.pk,
            )
        for keyframe in Keyframe.objects.filter(media_item=item).order_by("timestamp_s"):
            path = f"derived/media-{item.pk}/keyframes/{keyframe.timestamp_s:010.3f}s.jpg"
            parts.add_stored(
                path, keyframe.image.name, kind="derived", media_item=item.pk, timestamp_s=keyframe.timestamp_s
            )
        for stamp in item.timestamps.all():
            if stamp.state != stamp.State.GRANTED or stamp.response is None or stamp.gen_time is None:
                pending.append({"media_item": item.pk, "tsa_url": stamp.tsa_url, "state": "pending"})
                continue
            number = tsa_numbers.setdefault(stamp.tsa_url, len(tsa_numbers) + 1)
            extra = {"media_item": item.pk, "digest_sha256": stamp.digest_sha256, "tsa_url": stamp.tsa_url}
            parts.add_bytes(
                f"timestamps/media-{item.pk}.tsa{number}.tsr",
                bytes(stamp.response),
                kind="timestamp",
                gen_time=stamp.gen_time.isoformat(),
                **extra,
            )
            chain = f"timestamps/tsa{number}-certificates.pem"
            if chain not in parts.paths:
                parts.add_bytes(chain, stamp.certificates_pem.encode(), kind="tsa_certificates", tsa_url=stamp.tsa_url)
        progress(10 + 60 * (index + 1) // max(len(items), 1))
    if tsa_ca_pem():
        parts.add_bytes("timestamps/tsa-ca.pem", tsa_ca_pem().encode(), kind="tsa_certificates")
    audit = [json.dumps(entry, sort_keys=True, ensure_ascii=False) for entry in audit_entries(case_id=case.pk)]
    parts.add_bytes("audit.jsonl", ("\n".join(audit) + "\n").encode(), kind="audit")
    parts.add_bytes("report.pdf", report_pdf, kind="report")
    parts.add_bytes("README.txt", render_to_string(README_TEMPLATE, {"case": case}).encode(), kind="readme")
    progress(80)
    last = json.loads(audit[-1]) if audit else {}
    manifest = {
        "format": FORMAT,
        "generated_at": timezone.now().isoformat(),
        "generated_by": export.requested_by.get_username(),
        "export": export.pk,
        "versions": _tool_versions(),
        "case": case_snapshot(case),
        "audit": {"file": "audit.jsonl", "events": len(audit), "head_hash": last.get("entry_hash", "")},
        "files": parts.files,
        "pending_timestamps": pending,
    }
    manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
    parts.add_unlisted(MANIFEST, manifest_bytes)
    answers, failures = digest_timestamp(digest=hashlib.sha256(manifest_bytes).digest(), tsa_urls=export.tsa_urls)
    for number, answer in enumerate(answers, start=1):
        parts.add_unlisted(f"{MANIFEST}.tsa{number}.tsr", answer.response)
        parts.add_unlisted(f"{MANIFEST}.tsa{number}-certificates.pem", answer.certificates_pem.encode())
    export.entries = parts.entries
    export.sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    export.error_message = ("manifest not timestamped: " + "; ".join(failures))[:500] if failures else ""
    return export


def _stored_chunks(name: str) -> Iterator[bytes]:
    with default_storage.open(name, "rb") as stored:
        yield from iter(lambda: stored.read(HASH_CHUNK_BYTES), b"")


def package_stream(*, export: Export) -> zipstream.ZipStream:
    """Return the package as a ZIP stream over its stored entries; ``len()`` gives its size in bytes."""
    stream = zipstream.ZipStream(compress_type=zipstream.ZIP_STORED, sized=True)
    for path, name in export.entries:
        stream.add(_stored_chunks(name), arcname=path, size=default_storage.size(name))
    return stream
