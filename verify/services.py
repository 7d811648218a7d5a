"""Write operations on media evidence: store an upload, run and record its analysis."""

from __future__ import annotations

import functools
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import filetype
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from verify import ffmpeg
from verify.frames import (
    CandidateFrame,
    contact_sheet_render,
    frame_hash,
    frames_judge,
    keyframes_choose,
    scene_cuts,
)
from verify.models import Keyframe, MediaItem, MediaMetadata
from verify.signals import analysis_finished

logger = logging.getLogger(__name__)

_HASH_CHUNK_BYTES = 1024 * 1024
# Progress percent at the start of each stage; the keyframe pass fills the span to HASHES.
_STAGE_PERCENT: dict[str, int] = {
    MediaItem.Stage.PROBE: 2,
    MediaItem.Stage.KEYFRAMES: 5,
    MediaItem.Stage.HASHES: 80,
    MediaItem.Stage.CONTACT_SHEET: 90,
}
_PROGRESS_WRITE_INTERVAL_S = 1.0


class AnalysisFailure(Exception):
    """The file cannot be analysed. Recorded on the item as a failure and never retried."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class AnalysisRetry(Exception):
    """A transient error interrupted the analysis; the item is queued again."""


# --- originals ------------------------------------------------------------------------------


def original_storage_name(sha256: str) -> str:
    """Return the server-side name of the original with this SHA-256 (content-addressed)."""
    return f"originals/{sha256[:2]}/{sha256}"


def _sha256_of(upload: File[Any]) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks(_HASH_CHUNK_BYTES):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


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


def _sniff_mime_type(upload: File[Any]) -> str:
    upload.seek(0)
    head = upload.read(8192)
    upload.seek(0)
    kind = filetype.guess(head)
    return kind.mime if kind else "application/octet-stream"


def media_item_create(*, case: Any, upload: UploadedFile, uploaded_by: Any, mode: str = "") -> MediaItem:
    """Store an uploaded original write-once, record it in the case and queue its analysis.

    The SHA-256 is the one computed while the upload streamed (``HashingUploadHandler``);
    identical bytes are stored once and the new item points at the earliest one.
    """
    sha256 = getattr(upload, "sha256", None) or _sha256_of(upload)
    name = original_storage_name(sha256)
    if not default_storage.exists(name):
        name = default_storage.save(name, upload)
    mime_type = _sniff_mime_type(upload)
    earliest = MediaItem.objects.filter(sha256=sha256).order_by("uploaded_at", "id").first()
    with transaction.atomic():
        item = MediaItem.objects.create(
            case=case,
            original=name,
            original_filename=escape_client_filename(upload.name or ""),
            size_bytes=upload.size or 0,
            sha256=sha256,
            mime_type=mime_type,
            duplicate_of=earliest,
            uploaded_by=uploaded_by,
            mode=mode or settings.VERIFY_ANALYSIS_MODE,
        )
        transaction.on_commit(functools.partial(analysis_enqueue, media_item_id=item.pk), robust=True)
    return item


def analysis_enqueue(*, media_item_id: int) -> None:
    """Send the analysis job for a media item to the analysis queue."""
    from verify.tasks import analysis_run_task  # tasks import this module

    analysis_run_task.delay(media_item_id)


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
            shutil.copyfileobj(source, copy, _HASH_CHUNK_BYTES)
        copy.flush()
        yield Path(copy.name)


# --- analysis -------------------------------------------------------------------------------


def analysis_run(*, media_item_id: int) -> None:
    """Analyse one media item: probe, keyframes, hashes, contact sheet.

    Safe to deliver more than once: the item is claimed with a conditional UPDATE (a job that
    is not queued is left alone), and the outputs are replaced wholesale, so a re-run converges
    to the same rows and files.
    """
    claimed = MediaItem.objects.filter(pk=media_item_id, state=MediaItem.State.QUEUED).update(
        state=MediaItem.State.RUNNING,
        stage=MediaItem.Stage.PROBE,
        progress_percent=_STAGE_PERCENT[MediaItem.Stage.PROBE],
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        finished_at=None,
        error_code="",
        error_message="",
        updated_at=timezone.now(),
    )
    if not claimed:
        logger.info("media %s is not queued; nothing to do", media_item_id)
        return
    item = MediaItem.objects.get(pk=media_item_id)
    try:
        _analyse(item)
    except AnalysisFailure as failure:
        _finish(item, state=MediaItem.State.FAILED, code=failure.code, message=failure.message)
    except Exception as exc:
        logger.exception("analysis of media %s was interrupted", media_item_id)
        if item.attempts < settings.VERIFY_ANALYSIS_MAX_ATTEMPTS:
            MediaItem.objects.filter(pk=item.pk).update(
                state=MediaItem.State.QUEUED, stage=MediaItem.Stage.WAITING, updated_at=timezone.now()
            )
            raise AnalysisRetry(str(exc)) from exc
        _finish(
            item,
            state=MediaItem.State.FAILED,
            code="analysis_error",
            message=(
                f"Analysis stopped after {item.attempts} attempts on an internal error. "
                "The original is kept; an operator can find the cause in the worker log."
            ),
        )
    else:
        _finish(item, state=MediaItem.State.SUCCEEDED)


def _analyse(item: MediaItem) -> None:
    with original_local_path(item) as path:
        raw, probe = _probe(path)
        _metadata_save(item, raw, probe)
        if not probe.has_video and not probe.has_audio:
            raise AnalysisFailure(
                "no_media_streams", "The file has no video or audio stream, so there is nothing to analyse."
            )
        if not probe.has_video:
            return  # audio-only evidence: the metadata is the whole analysis
        with tempfile.TemporaryDirectory(prefix="verify-frames-") as work:
            workdir = Path(work)
            candidates = _keyframes_extract(item, path, probe, workdir)
            _progress(item, MediaItem.Stage.HASHES)
            chosen, truncated = keyframes_choose(
                candidates,
                max_count=settings.VERIFY_MAX_KEYFRAMES,
                near_duplicate_bits=settings.VERIFY_NEAR_DUPLICATE_BITS,
            )
            _keyframes_save(item, chosen, truncated=truncated)
            _progress(item, MediaItem.Stage.CONTACT_SHEET)
            _contact_sheet_save(item, chosen, workdir)


def _probe(path: Path) -> tuple[dict[str, Any], ffmpeg.ProbeResult]:
    argv = ffmpeg.probe_argv(path, ffprobe=settings.FFPROBE_BINARY)
    try:
        result = ffmpeg.run(argv, timeout_s=settings.VERIFY_FFPROBE_TIMEOUT_S)
        raw = ffmpeg.parse_probe_json(result.stdout)
    except ffmpeg.FFmpegError as exc:
        if exc.timed_out:
            raise AnalysisFailure("probe_timeout", "Reading the file's structure took too long.") from exc
        reason = _probe_error_text(exc.stdout)
        raise AnalysisFailure("unreadable_media", f"The file could not be read as audio or video ({reason}).") from exc
    except ffmpeg.ProbeParseError as exc:
        raise AnalysisFailure("unreadable_media", f"The file could not be read as audio or video ({exc}).") from exc
    return raw, ffmpeg.parse_probe(raw)


def _probe_error_text(stdout: str) -> str:
    # ffprobe's -show_error JSON carries a short reason without the file path.
    try:
        ffmpeg.parse_probe_json(stdout)
    except ffmpeg.ProbeParseError as exc:
        return str(exc)
    return "ffprobe rejected it"


def _metadata_save(item: MediaItem, raw: dict[str, Any], probe: ffmpeg.ProbeResult) -> None:
    location = probe.location
    MediaMetadata.objects.update_or_create(
        media_item=item,
        defaults={
            "raw": raw,
            "container": probe.container,
            "container_long_name": probe.container_long_name,
            "duration_s": probe.duration_s,
            "bit_rate_bps": probe.bit_rate_bps,
            "video_codec": probe.video_codec,
            "coded_width": probe.coded_width,
            "coded_height": probe.coded_height,
            "display_width": probe.display_width,
            "display_height": probe.display_height,
            "rotation_deg": probe.rotation_deg,
            "frame_rate_fps": probe.frame_rate_fps,
            "frame_count": probe.frame_count,
            "audio_codec": probe.audio_codec,
            "audio_channels": probe.audio_channels,
            "audio_sample_rate_hz": probe.audio_sample_rate_hz,
            "creation_time": probe.creation_time,
            "creation_time_source": probe.creation_time_source,
            "latitude": location.latitude if location else None,
            "longitude": location.longitude if location else None,
            "altitude_m": location.altitude_m if location else None,
            "location_source": probe.location_source,
            "device_make": probe.device_make,
            "device_model": probe.device_model,
            "device_software": probe.device_software,
            "encoder": probe.encoder,
        },
    )


def _keyframes_extract(item: MediaItem, path: Path, probe: ffmpeg.ProbeResult, workdir: Path) -> list[CandidateFrame]:
    _progress(item, MediaItem.Stage.KEYFRAMES)
    out_dir = workdir / "frames"
    out_dir.mkdir()
    scores_file = workdir / "scene-scores.txt"
    fast = item.mode == MediaItem.Mode.FAST
    interval_s = settings.VERIFY_KEYFRAME_INTERVAL_S
    argv = ffmpeg.keyframes_argv(
        path,
        ffmpeg=settings.FFMPEG_BINARY,
        out_dir=out_dir,
        candidates_file=workdir / "candidate-scores.txt",
        scores_file=scores_file,
        scene_candidate_threshold=None if fast else settings.VERIFY_SCENE_CANDIDATE_THRESHOLD,
        interval_s=interval_s,
        # Unconfirmed candidates and near-duplicates are dropped afterwards, so let ffmpeg
        # write more than the cap.
        max_frames=settings.VERIFY_MAX_KEYFRAMES * 4,
    )
    try:
        result = ffmpeg.run(
            argv,
            timeout_s=settings.VERIFY_FFMPEG_TIMEOUT_S,
            on_stdout_line=_keyframe_progress_reporter(item, probe.duration_s),
        )
    except ffmpeg.FFmpegError as exc:
        if exc.timed_out:
            raise AnalysisFailure("analysis_timeout", "Decoding the video took longer than allowed.") from exc
        raise AnalysisFailure(
            "decode_failed", f"ffmpeg could not decode the video stream (exit code {exc.exit_code})."
        ) from exc
    frames = ffmpeg.parse_selected_frames(stderr=result.stderr, out_dir=out_dir)
    if not frames:
        raise AnalysisFailure("no_decodable_frames", "The video stream holds no frame that could be decoded.")
    scores = ffmpeg.parse_scene_scores(scores_file.read_text()) if scores_file.exists() else []
    cuts = scene_cuts(scores, threshold=settings.VERIFY_SCENE_THRESHOLD, min_shot_s=settings.VERIFY_MIN_SHOT_S)
    candidates = []
    for judged in frames_judge(frames, cuts=cuts, scores=scores, interval_s=interval_s):
        phash, width, height = frame_hash(judged.frame.path)
        candidates.append(
            CandidateFrame(
                frame=judged.frame,
                reasons=judged.reasons,
                scene_score=judged.scene_score,
                phash=phash,
                width=width,
                height=height,
            )
        )
    return candidates


def _keyframe_progress_reporter(item: MediaItem, duration_s: float | None) -> Any:
    start = _STAGE_PERCENT[MediaItem.Stage.KEYFRAMES]
    span = _STAGE_PERCENT[MediaItem.Stage.HASHES] - start
    last_write = [0.0]

    def report(line: str) -> None:
        position_s = ffmpeg.parse_progress_out_time_s(line)
        if position_s is None or not duration_s:
            return
        now = timezone.now().timestamp()
        if now - last_write[0] < _PROGRESS_WRITE_INTERVAL_S:
            return
        last_write[0] = now
        percent = start + int(span * min(position_s / duration_s, 1.0))
        MediaItem.objects.filter(pk=item.pk, progress_percent__lt=percent).update(
            progress_percent=percent, updated_at=timezone.now()
        )

    return report


def _derived_name(item: MediaItem, filename: str) -> str:
    return f"derived/{item.pk}/{filename}"


def _replace_file(name: str, path: Path) -> str:
    if default_storage.exists(name):
        default_storage.delete(name)
    with path.open("rb") as handle:
        return default_storage.save(name, File(handle))


def _keyframes_save(item: MediaItem, chosen: list[CandidateFrame], *, truncated: bool) -> None:
    for old in item.keyframes.all():
        default_storage.delete(old.image.name)
    rows = []
    for candidate in chosen:
        millis = round(candidate.frame.timestamp_s * 1000)
        name = _replace_file(_derived_name(item, f"keyframe-{millis:09d}.jpg"), candidate.frame.path)
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
                source_sha256=item.sha256,
            )
        )
    with transaction.atomic():
        item.keyframes.all().delete()
        Keyframe.objects.bulk_create(rows)
        MediaItem.objects.filter(pk=item.pk).update(
            keyframes_truncated=truncated, ffmpeg_version=ffmpeg_version(), updated_at=timezone.now()
        )


def _contact_sheet_save(item: MediaItem, chosen: list[CandidateFrame], workdir: Path) -> None:
    sheet_path = workdir / "contact-sheet.jpg"
    contact_sheet_render([(c.frame.path, c.frame.timestamp_s) for c in chosen], sheet_path)
    name = _replace_file(_derived_name(item, "contact-sheet.jpg"), sheet_path)
    MediaItem.objects.filter(pk=item.pk).update(contact_sheet=name, updated_at=timezone.now())


@functools.cache
def ffmpeg_version() -> str:
    """Return the version of the configured ffmpeg binary, as recorded on derived files."""
    result = ffmpeg.run(ffmpeg.version_argv(ffmpeg=settings.FFMPEG_BINARY), timeout_s=30)
    return ffmpeg.parse_version(result.stdout)


def _progress(item: MediaItem, stage: str) -> None:
    MediaItem.objects.filter(pk=item.pk).update(
        stage=stage, progress_percent=_STAGE_PERCENT[stage], updated_at=timezone.now()
    )


def _finish(item: MediaItem, *, state: str, code: str = "", message: str = "") -> None:
    """Record the terminal state and announce it once the row is committed."""
    with transaction.atomic():
        MediaItem.objects.filter(pk=item.pk).update(
            state=state,
            stage=MediaItem.Stage.DONE,
            progress_percent=100,
            error_code=code,
            error_message=message[:500],
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
        transaction.on_commit(
            functools.partial(analysis_finished.send, sender=MediaItem, media_item_id=item.pk, case_id=item.case_id)
        )
