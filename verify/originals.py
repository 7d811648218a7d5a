"""Stored originals: their content-addressed names, their hashes, and a local path for ffmpeg.

Originals are written once under their SHA-256 and never modified; everything that reads one
goes through here, whatever the storage backend.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from verify.models import MediaItem

HASH_CHUNK_BYTES = 1024 * 1024


def original_storage_name(sha256: str) -> str:
    """Return the server-side name of the original with this SHA-256 (content-addressed)."""
    return f"originals/{sha256[:2]}/{sha256}"


def file_sha256(upload: File[Any]) -> str:
    """Return the SHA-256 of an open file, leaving it at its start."""
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks(HASH_CHUNK_BYTES):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def stored_sha256(name: str) -> str:
    """Return the SHA-256 of a stored file, or "" if it is missing."""
    digest = hashlib.sha256()
    try:
        with default_storage.open(name, "rb") as stored:
            for chunk in iter(lambda: stored.read(HASH_CHUNK_BYTES), b""):
                digest.update(chunk)
    except FileNotFoundError:
        return ""
    return digest.hexdigest()


@contextmanager
def original_local_path(item: MediaItem) -> Iterator[Path]:
    """Yield a local path of the item's original: the stored file, or a temporary copy of it."""
    try:
        yield Path(default_storage.path(item.original.name))
        return
    except NotImplementedError:
        pass  # remote storage: ffmpeg needs a local file
    with tempfile.NamedTemporaryFile(prefix="verify-original-", dir=settings.FILE_UPLOAD_TEMP_DIR) as copy:
        with default_storage.open(item.original.name, "rb") as source:
            shutil.copyfileobj(source, copy, HASH_CHUNK_BYTES)
        copy.flush()
        yield Path(copy.name)
