"""Files derived from an original (keyframe images, the contact sheet) and the decoder named on them.

A re-run replaces them under the same names, so the derived files converge as the rows do. The
original itself is never written here.
"""

from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from PIL import Image

from verify import ffmpeg
from verify.frames import CandidateFrame, SheetHeader, contact_sheet_render
from verify.models import Keyframe, MediaItem
from verify.safeguards import resource_limits


def derived_name(item: MediaItem, filename: str) -> str:
    """Return the storage name of a file derived from the item's original."""
    return f"derived/{item.pk}/{filename}"


def replace_file(name: str, path: Path) -> str:
    """Store the file under name, replacing what a previous run stored there; return the stored name."""
    if default_storage.exists(name):
        default_storage.delete(name)
    with path.open("rb") as handle:
        return default_storage.save(name, File(handle))


def keyframes_save(
    item: MediaItem, chosen: list[CandidateFrame], *, truncated: bool, decoder: str | None = None
) -> None:
    decoder = decoder or ffmpeg_version()
    for old in item.keyframes.all():
        default_storage.delete(old.image.name)
    rows = []
    for candidate in chosen:
        millis = round(candidate.frame.timestamp_s * 1000)
        name = replace_file(derived_name(item, f"keyframe-{millis:09d}.jpg"), candidate.frame.path)
        rows.append(
            Keyframe(
                media_item=item,
                timestamp_s=candidate.frame.timestamp_s,
                reasons=list(candidate.reasons),
                scene_score=candidate.scene_score,
                image=name,
                width=candidate.width,
                height=candidate.height,
                phash=str(candidate.phash),
                source_sha256=item.sha256 or "",
                ffmpeg_version=decoder,
            )
        )
    with transaction.atomic():
        item.keyframes.all().delete()
        Keyframe.objects.bulk_create(rows)
        MediaItem.objects.filter(pk=item.pk).update(
            keyframes_truncated=truncated, ffmpeg_version=decoder, updated_at=timezone.now()
        )


def contact_sheet_save(
    item: MediaItem, tiles: list[tuple[Image.Image, float]], workdir: Path, *, cuts: set[int] | None = None,
    duration_s: float | None = None,
) -> None:  # fmt: skip
    """Render the contact sheet of the tiles with its header and store it as the item's."""
    sheet_path = workdir / "contact-sheet.jpg"
    header = SheetHeader(item.original_filename, item.sha256 or "", item.case_id, duration_s)
    contact_sheet_render(tiles, sheet_path, header=header, cuts=cuts or set())
    name = replace_file(derived_name(item, "contact-sheet.jpg"), sheet_path)
    MediaItem.objects.filter(pk=item.pk).update(contact_sheet=name, updated_at=timezone.now())


@functools.cache
def ffmpeg_version() -> str:
    """Return the version of the configured ffmpeg binary, as recorded on derived files."""
    result = ffmpeg.run(ffmpeg.version_argv(ffmpeg=settings.FFMPEG_BINARY), timeout_s=30, limits=resource_limits())
    return ffmpeg.parse_version(result.stdout)
