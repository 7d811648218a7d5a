"""The parts of the analysis that read what exiftool and C2PA say, and the still-photo branch's facts.

``verify.analysis`` runs the pipeline; this module turns its inputs into rows: the metadata
values (ffprobe's first, exiftool's where ffprobe is silent), the signals, and the Content
Credentials row.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings

from verify import credentials, exif, exif_reader, photo_signals, photos
from verify.models import ContentCredentials, MediaItem, MediaMetadata
from verify.safeguards import AnalysisFailure, strings_truncate

logger = logging.getLogger(__name__)

# Containers whose Content Credentials c2pa reads: the stills, and MP4/MOV (ISO BMFF).
CREDENTIAL_KINDS = ("jpeg", "png", "webp", "heif", "avif", "isobmff")


def file_kind(path: Path) -> str:
    """Return the still kind of a file (see ``photos.still_kind``), "isobmff" for MP4/MOV, or ""."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    return photos.still_kind(head) or ("isobmff" if head[4:8] == b"ftyp" else "")


def exif_tags(path: Path) -> dict[str, Any]:
    """Return exiftool's tags for the file; an unreadable answer is recorded, not a failure."""
    try:
        return exif_reader.exif_read(path, timeout_s=settings.VERIFY_EXIFTOOL_TIMEOUT_S)
    except exif_reader.ExifReadError as exc:
        logger.warning("exiftool could not read %s: %s", path.name, exc)
        return {"ExifTool:Error": str(exc)}


def metadata_values(probe_values: dict[str, Any], facts: exif.ExifFacts) -> dict[str, Any]:
    """Return every normalised field: ffprobe's value where it has one, else exiftool's."""
    values = dict(probe_values)
    for name in MediaMetadata.normalised_field_names():
        if values.get(name) in (None, "") and hasattr(facts, name):
            values[name] = getattr(facts, name)
    # A place and its source travel together: never ffprobe's source with exiftool's point.
    if probe_values.get("latitude") is None and facts.location is not None:
        values.update(latitude=facts.latitude, longitude=facts.longitude, altitude_m=facts.altitude_m)
        values["location_source"] = facts.location_source
    if probe_values.get("creation_time") is None:
        values.update(creation_time=facts.creation_time, creation_time_source=facts.creation_time_source)
    for name in MediaMetadata.EXIFTOOL_FIELDS:
        values[name] = getattr(facts, name)
    return values


def still_probe_values(decoded: photos.DecodedPhoto) -> dict[str, Any]:
    """Return what a still says about itself in the fields ffprobe fills for video."""
    return {
        "container": decoded.container,
        "container_long_name": f"{decoded.container.upper()} still image",
        "video_codec": decoded.codec,
        "coded_width": decoded.coded_width,
        "coded_height": decoded.coded_height,
        "display_width": decoded.display_width,
        "display_height": decoded.display_height,
        "rotation_deg": decoded.rotation_deg,
        "frame_count": 1,
    }


def stored_exiftool_answer(tags: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Return the exiftool answer as stored (strings capped), and whether any was cut."""
    result: tuple[dict[str, Any], bool] = strings_truncate(tags, max_chars=settings.VERIFY_MAX_METADATA_VALUE_CHARS)
    return result


def signals_for(
    item: MediaItem, *, facts: exif.ExifFacts, tags: dict[str, Any], thumbnail_distance_bits: int | None
) -> list[dict[str, str]]:
    """Return the signals of one item."""
    has_camera_metadata = bool(
        facts.device_make or facts.device_model or facts.creation_time or facts.capture_time_local or facts.location
    )
    return photo_signals.signals_find(
        facts=facts,
        tags=tags,
        uploaded_at=item.uploaded_at,
        claimed_date=item.case.claimed_date,
        thumbnail_distance_bits=thumbnail_distance_bits,
        thumbnail_threshold_bits=photos.THUMBNAIL_DIFFERENT_BITS,
        has_camera_metadata=has_camera_metadata,
    )


def thumbnail_distance(path: Path, kind: str) -> int | None:
    """Return how far a JPEG's embedded thumbnail is from its main image, in pHash bits."""
    if kind != "jpeg":
        return None
    try:
        thumbnail = exif_reader.exif_thumbnail(path, timeout_s=settings.VERIFY_EXIFTOOL_TIMEOUT_S)
    except exif_reader.ExifReadError:
        return None
    return photos.thumbnail_distance_bits(path, thumbnail)


def credentials_save(item: MediaItem, path: Path, kind: str) -> None:
    """Check the file's Content Credentials and store the result (only for formats c2pa reads)."""
    if kind not in CREDENTIAL_KINDS:
        ContentCredentials.objects.filter(media_item=item).delete()
        return
    found = credentials.credentials_read(path)
    values = asdict(found)
    values["manifest_store"], _ = strings_truncate(
        values["manifest_store"], max_chars=settings.VERIFY_MAX_METADATA_VALUE_CHARS
    )
    values["message"] = values["message"][:500]
    for name in ("signer", "signer_issuer", "claim_generator"):
        values[name] = values[name][:300]
    ContentCredentials.objects.update_or_create(media_item=item, defaults=values)


def photo_decode(path: Path, kind: str, derived_path: Path) -> photos.DecodedPhoto:
    """Decode a still upright into derived_path; raise AnalysisFailure for what cannot be."""
    try:
        return photos.photo_decode(
            path, kind=kind, max_pixels=settings.VERIFY_MAX_FRAME_PIXELS, derived_path=derived_path
        )
    except photos.PhotoTooLarge as exc:
        limit = settings.VERIFY_MAX_FRAME_PIXELS
        raise AnalysisFailure(
            "dimensions_exceed_limit",
            f"The photo declares {exc.size} pixels; the limit is {limit:,} pixels.",
        ) from exc
    except photos.PhotoDecodeError as exc:
        raise AnalysisFailure("unreadable_media", f"The file could not be decoded as a photo ({exc}).") from exc
