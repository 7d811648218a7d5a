"""Write operations on media evidence: store an upload, run and record its analysis."""

from __future__ import annotations

import functools
import hashlib
import logging
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import Image

from verify import ffmpeg, sniffing
from verify.frame_digests import FrameDigester
from verify.frames import (
    CandidateFrame,
    contact_sheet_render,
    frames_judge,
    keyframes_choose,
    scene_cuts,
)
from verify.models import IdempotentRequest, Keyframe, MediaItem, MediaMetadata
from verify.signals import analysis_finished, original_integrity_failed
from verify.similarity import matching

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
# ffmpeg's own chatter (showinfo lines, decoder warnings) is kept up to this size per run.
_MAX_DIAGNOSTICS_BYTES = 64 * 1024**2


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
    _upload_check_content(upload)
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


def _upload_check_content(upload: File[Any]) -> None:
    upload.seek(0)
    head = upload.read(sniffing.SNIFF_BYTES)
    upload.seek(0)
    sniffed = sniffing.content_sniff(head)
    if not sniffed.accepted:
        message = sniffing.rejection_message(sniffed.kind)
        raise ValidationError({"file": [ValidationError(message, code="unsupported_content")]})


def analysis_enqueue(*, media_item_id: int) -> bool:
    """Send the analysis job for a media item to the analysis queue; return whether it was sent.

    A broker that cannot be reached is not an error for the caller: the job stays queued in the
    database with no ``enqueued_at`` and the reconciler sends it once the broker is back.
    """
    from verify.tasks import analysis_run_task  # tasks import this module

    try:
        analysis_run_task.delay(media_item_id)
    except Exception:  # kombu raises several types for an unreachable broker
        logger.warning("could not send media %s to the broker; it stays queued for the reconciler", media_item_id)
        MediaItem.objects.filter(pk=media_item_id, state=MediaItem.State.QUEUED).update(enqueued_at=None)
        return False
    MediaItem.objects.filter(pk=media_item_id, state=MediaItem.State.QUEUED).update(enqueued_at=timezone.now())
    return True


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
    is neither queued nor running on an expired lease is left alone), and the outputs are
    replaced wholesale, so a re-run converges to the same rows and files. A job that has used
    all its attempts and comes back again (its worker kept dying on it) is failed, not run.
    """
    if _analysis_abandon(MediaItem.objects.filter(_claimable(), pk=media_item_id)):
        return
    claimed = MediaItem.objects.filter(
        _claimable(), pk=media_item_id, attempts__lt=settings.VERIFY_ANALYSIS_MAX_ATTEMPTS
    ).update(
        state=MediaItem.State.RUNNING,
        lease_expires_at=_lease_expiry(),
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
                state=MediaItem.State.QUEUED,
                stage=MediaItem.Stage.WAITING,
                lease_expires_at=None,
                enqueued_at=timezone.now(),  # the task sends itself again after a backoff
                updated_at=timezone.now(),
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
        _probe_gates(probe)
        if not probe.has_video and not probe.has_audio:
            raise AnalysisFailure(
                "no_media_streams", "The file has no video or audio stream, so there is nothing to analyse."
            )
        if not probe.has_video:
            return  # audio-only evidence: the metadata is the whole analysis
        with tempfile.TemporaryDirectory(prefix="verify-frames-") as work:
            workdir = Path(work)
            candidates, digests = _keyframes_extract(item, path, probe, workdir)
            _progress(item, MediaItem.Stage.HASHES)
            chosen, truncated = keyframes_choose(
                candidates,
                max_count=settings.VERIFY_MAX_KEYFRAMES,
                near_duplicate_bits=settings.VERIFY_NEAR_DUPLICATE_BITS,
            )
            _keyframes_save(item, chosen, truncated=truncated)
            _progress(item, MediaItem.Stage.CONTACT_SHEET)
            kept = [(c.frame.timestamp_s, digests.digest(c.frame.path)) for c in chosen]
            _contact_sheet_save(item, [(digest.tile(), timestamp_s) for timestamp_s, digest in kept], workdir)
            matching.media_matches_update(media_item=item, frames=[(t, digest.pdq) for t, digest in kept])


def _probe(path: Path) -> tuple[dict[str, Any], ffmpeg.ProbeResult]:
    argv = ffmpeg.probe_argv(path, ffprobe=settings.FFPROBE_BINARY, limits=_input_limits())
    try:
        result = ffmpeg.run(
            argv,
            timeout_s=settings.VERIFY_FFPROBE_TIMEOUT_S,
            limits=_resource_limits(),
            max_stdout_bytes=settings.VERIFY_MAX_METADATA_BYTES,
            max_stderr_bytes=_MAX_DIAGNOSTICS_BYTES,
        )
        _refusals_raise(ffmpeg.parse_refusals(result.stderr))
        raw = ffmpeg.parse_probe_json(result.stdout)
    except ffmpeg.FFmpegError as exc:
        if exc.timed_out:
            raise AnalysisFailure("probe_timeout", "Reading the file's structure took too long.") from exc
        if exc.output_exceeded == "stdout":
            limit_mb = settings.VERIFY_MAX_METADATA_BYTES / 1024**2
            raise AnalysisFailure(
                "metadata_too_large", f"The file's metadata is larger than the limit of {limit_mb:g} MB."
            ) from exc
        _refusals_raise(ffmpeg.parse_refusals(exc.stderr_tail))
        _resource_limit_raise(exc)
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
    stored_raw, raw_truncated = _strings_truncate(raw, max_chars=settings.VERIFY_MAX_METADATA_VALUE_CHARS)
    MediaMetadata.objects.update_or_create(
        media_item=item,
        defaults=_fields_fit(
            MediaMetadata,
            {
                "raw": stored_raw,
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
            truncated=raw_truncated,
        ),
    )


def _keyframes_extract(
    item: MediaItem, path: Path, probe: ffmpeg.ProbeResult, workdir: Path
) -> tuple[list[CandidateFrame], FrameDigester]:
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
        decoder_threads=settings.VERIFY_DECODER_THREADS,
        limits=_input_limits(),
    )
    try:
        with FrameDigester(out_dir) as digests:  # hashes the frames while ffmpeg decodes
            result = ffmpeg.run(
                argv,
                timeout_s=settings.VERIFY_FFMPEG_TIMEOUT_S,
                limits=_resource_limits(),
                on_stdout_line=_keyframe_progress_reporter(item, probe.duration_s),
                on_tick=_heartbeat(item),
                max_stdout_bytes=_MAX_DIAGNOSTICS_BYTES,
                max_stderr_bytes=_MAX_DIAGNOSTICS_BYTES,
            )
    except ffmpeg.FFmpegError as exc:
        if exc.timed_out:
            raise AnalysisFailure("analysis_timeout", "Decoding the video took longer than allowed.") from exc
        _refusals_raise(ffmpeg.parse_refusals(exc.stderr_tail))
        _resource_limit_raise(exc)
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
        digest = digests.digest(judged.frame.path)
        candidates.append(
            CandidateFrame(
                frame=judged.frame,
                reasons=judged.reasons,
                scene_score=judged.scene_score,
                phash=digest.phash,
                width=digest.width,
                height=digest.height,
            )
        )
    return candidates, digests


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
                ffmpeg_version=ffmpeg_version(),
            )
        )
    with transaction.atomic():
        item.keyframes.all().delete()
        Keyframe.objects.bulk_create(rows)
        MediaItem.objects.filter(pk=item.pk).update(
            keyframes_truncated=truncated, ffmpeg_version=ffmpeg_version(), updated_at=timezone.now()
        )


def _contact_sheet_save(item: MediaItem, tiles: list[tuple[Image.Image, float]], workdir: Path) -> None:
    sheet_path = workdir / "contact-sheet.jpg"
    contact_sheet_render(tiles, sheet_path)
    name = _replace_file(_derived_name(item, "contact-sheet.jpg"), sheet_path)
    MediaItem.objects.filter(pk=item.pk).update(contact_sheet=name, updated_at=timezone.now())


@functools.cache
def ffmpeg_version() -> str:
    """Return the version of the configured ffmpeg binary, as recorded on derived files."""
    result = ffmpeg.run(ffmpeg.version_argv(ffmpeg=settings.FFMPEG_BINARY), timeout_s=30, limits=_resource_limits())
    return ffmpeg.parse_version(result.stdout)


def _progress(item: MediaItem, stage: str) -> None:
    MediaItem.objects.filter(pk=item.pk).update(
        stage=stage,
        progress_percent=_STAGE_PERCENT[stage],
        lease_expires_at=_lease_expiry(),
        updated_at=timezone.now(),
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
            lease_expires_at=None,
            updated_at=timezone.now(),
        )
        logger.info("media %s finished: %s %s", item.pk, state, code)
        transaction.on_commit(
            functools.partial(analysis_finished.send, sender=MediaItem, media_item_id=item.pk, case_id=item.case_id)
        )


# --- untrusted input ------------------------------------------------------------------------


def _input_limits() -> ffmpeg.InputLimits:
    return ffmpeg.InputLimits(
        max_streams=settings.VERIFY_MAX_STREAMS,
        probe_size_bytes=settings.VERIFY_FFMPEG_PROBESIZE_BYTES,
        analyze_duration_s=settings.VERIFY_FFMPEG_ANALYZEDURATION_S,
        max_pixels=settings.VERIFY_MAX_FRAME_PIXELS,
    )


def _resource_limits() -> ffmpeg.ResourceLimits:
    return ffmpeg.ResourceLimits(
        cpu_time_s=settings.VERIFY_FFMPEG_CPU_TIME_S,
        address_space_bytes=settings.VERIFY_FFMPEG_ADDRESS_SPACE_BYTES,
        output_file_bytes=settings.VERIFY_FFMPEG_OUTPUT_FILE_BYTES,
    )


def _probe_gates(probe: ffmpeg.ProbeResult) -> None:
    """Refuse, before anything is decoded, a file whose declared shape passes a limit."""
    if probe.stream_count > settings.VERIFY_MAX_STREAMS:
        raise _too_many_streams(settings.VERIFY_MAX_STREAMS)
    width, height = probe.coded_width or 0, probe.coded_height or 0
    if width * height > settings.VERIFY_MAX_FRAME_PIXELS:
        raise _dimensions_exceed_limit(f"{width}x{height}")
    fps = probe.frame_rate_fps
    if fps is not None and fps > settings.VERIFY_MAX_FRAME_RATE_FPS:
        raise AnalysisFailure(
            "frame_rate_exceeds_limit",
            f"The video declares {fps:g} frames per second; the limit is {settings.VERIFY_MAX_FRAME_RATE_FPS:g}.",
        )
    duration = probe.duration_s
    if duration is not None and duration > settings.VERIFY_MAX_DURATION_S:
        raise AnalysisFailure(
            "duration_exceeds_limit",
            f"The file declares a duration of {duration:.0f} s; the limit is {settings.VERIFY_MAX_DURATION_S:.0f} s.",
        )


def _too_many_streams(limit: int) -> AnalysisFailure:
    return AnalysisFailure("too_many_streams", f"The file has more than {limit} streams, the most this service reads.")


def _dimensions_exceed_limit(size: str) -> AnalysisFailure:
    limit = settings.VERIFY_MAX_FRAME_PIXELS
    return AnalysisFailure(
        "dimensions_exceed_limit",
        f"The video declares frames of {size.replace('x', ' x ')} pixels; the limit is {limit:,} pixels per frame.",
    )


def _refusals_raise(refusals: list[ffmpeg.Refusal]) -> None:
    for refusal in refusals:
        if refusal.kind == "streams":
            raise _too_many_streams(int(refusal.detail))
        if refusal.kind == "picture_size":
            raise _dimensions_exceed_limit(refusal.detail)
        if refusal.kind == "codec":
            raise AnalysisFailure(
                "unsupported_codec",
                f"The file uses the {refusal.detail} codec, which this service does not decode.",
            )
        if refusal.kind == "format":
            raise AnalysisFailure(
                "unsupported_format",
                f"The file contains or points to {refusal.detail} content (a playlist or another container "
                "inside it), which this service never opens.",
            )


def _resource_limit_raise(exc: ffmpeg.FFmpegError) -> None:
    if exc.output_exceeded:
        raise AnalysisFailure("resource_limit_exceeded", "ffmpeg wrote more diagnostics than allowed for one file.")
    # With soft == hard limits the kernel ends a process over its CPU time with SIGKILL.
    reasons: dict[int | None, str] = {
        signal.SIGXCPU.value: "used more CPU time than allowed",
        signal.SIGKILL.value: "was stopped by the kernel: it used more CPU time or memory than allowed",
        signal.SIGXFSZ.value: "tried to write a file larger than allowed",
    }
    if exc.killed_by_signal in reasons:
        raise AnalysisFailure("resource_limit_exceeded", f"Decoding the file {reasons[exc.killed_by_signal]}.")


def _strings_truncate(value: Any, *, max_chars: int) -> tuple[Any, bool]:
    """Return value with every string (keys too) cut to max_chars, and whether any was cut."""
    if isinstance(value, str):
        return (value[:max_chars], True) if len(value) > max_chars else (value, False)
    if isinstance(value, dict):
        cut = False
        result = {}
        for key, item in value.items():
            new_key, key_cut = _strings_truncate(key, max_chars=max_chars)
            result[new_key], item_cut = _strings_truncate(item, max_chars=max_chars)
            cut = cut or key_cut or item_cut
        return result, cut
    if isinstance(value, list):
        pairs = [_strings_truncate(item, max_chars=max_chars) for item in value]
        return [item for item, _ in pairs], any(cut for _, cut in pairs)
    return value, False


def _fields_fit(model: Any, values: dict[str, Any], *, truncated: bool) -> dict[str, Any]:
    """Return values with strings cut to their column's max_length, plus the values_truncated flag."""
    fitted = {}
    for name, value in values.items():
        max_length = model._meta.get_field(name).max_length
        if isinstance(value, str) and max_length is not None and len(value) > max_length:
            value, truncated = value[:max_length], True
        fitted[name] = value
    return {**fitted, "values_truncated": truncated}


# --- job recovery ---------------------------------------------------------------------------


def _lease_expiry() -> Any:
    return timezone.now() + timedelta(seconds=settings.VERIFY_JOB_LEASE_S)


def _claimable() -> Q:
    """Return the jobs a worker may take: queued ones, and running ones whose worker was lost."""
    return Q(state=MediaItem.State.QUEUED) | Q(state=MediaItem.State.RUNNING, lease_expires_at__lt=timezone.now())


def _heartbeat(item: MediaItem) -> Callable[[], None]:
    """Return a callable that renews the item's lease, writing at most every quarter lease."""
    every_s = settings.VERIFY_JOB_LEASE_S / 4
    last = [time.monotonic()]

    def beat() -> None:
        if time.monotonic() - last[0] < every_s:
            return
        last[0] = time.monotonic()
        MediaItem.objects.filter(pk=item.pk, state=MediaItem.State.RUNNING).update(lease_expires_at=_lease_expiry())

    return beat


def _analysis_abandon(candidates: Any) -> int:
    """Fail the candidate jobs that have no attempts left; return how many were failed."""
    abandoned = 0
    exhausted = candidates.filter(attempts__gte=settings.VERIFY_ANALYSIS_MAX_ATTEMPTS)
    for item in exhausted.only("pk", "case_id", "attempts"):
        with transaction.atomic():
            failed = (
                candidates.filter(pk=item.pk)
                .filter(attempts__gte=settings.VERIFY_ANALYSIS_MAX_ATTEMPTS)
                .update(
                    state=MediaItem.State.FAILED,
                    stage=MediaItem.Stage.DONE,
                    progress_percent=100,
                    error_code="analysis_abandoned",
                    error_message=(
                        f"The analysis was interrupted {item.attempts} times: the worker stopped while processing "
                        "this file each time. The original is kept; an operator can find the cause in the worker log."
                    ),
                    finished_at=timezone.now(),
                    lease_expires_at=None,
                    updated_at=timezone.now(),
                )
            )
            if failed:
                abandoned += 1
                logger.error("media %s finished: failed analysis_abandoned", item.pk)
                transaction.on_commit(
                    functools.partial(
                        analysis_finished.send, sender=MediaItem, media_item_id=item.pk, case_id=item.case_id
                    )
                )
    return abandoned


@dataclass(frozen=True)
class ReconcileReport:
    resent: int
    reclaimed: int
    abandoned: int


def analysis_reconcile() -> ReconcileReport:
    """Send again every job the broker may have lost; fail the ones whose worker kept dying.

    - running past its lease: the worker died. With attempts left, the job is queued again;
      without, it fails with ``analysis_abandoned``;
    - queued but never sent (the broker was down) or sent longer than
      ``VERIFY_JOB_RESEND_AFTER_S`` ago (the message may have been lost): it is sent again.

    Every change is a conditional UPDATE, so reconcilers on several workers at once take each
    job once; a duplicate message is harmless because ``analysis_run`` claims before it works.
    """
    now = timezone.now()
    lost = MediaItem.objects.filter(state=MediaItem.State.RUNNING, lease_expires_at__lt=now)
    abandoned = _analysis_abandon(lost)
    reclaimed_ids = []
    for item_id in lost.filter(attempts__lt=settings.VERIFY_ANALYSIS_MAX_ATTEMPTS).values_list("pk", flat=True):
        moved = lost.filter(pk=item_id).update(
            state=MediaItem.State.QUEUED,
            stage=MediaItem.Stage.WAITING,
            lease_expires_at=None,
            enqueued_at=None,
            updated_at=now,
        )
        if moved:
            logger.warning("media %s: its worker was lost; queued again", item_id)
            reclaimed_ids.append(item_id)
    resend_before = now - timedelta(seconds=settings.VERIFY_JOB_RESEND_AFTER_S)
    # A fresh upload is sent right after its transaction commits; give that a moment.
    unsent = Q(enqueued_at__isnull=True) & (Q(uploaded_at__lt=now - timedelta(seconds=5)) | Q(pk__in=reclaimed_ids))
    stale = MediaItem.objects.filter(Q(state=MediaItem.State.QUEUED) & (unsent | Q(enqueued_at__lt=resend_before)))
    resent = 0
    for item_id, sent_at in stale.values_list("pk", "enqueued_at")[:500]:
        previous = Q(enqueued_at=sent_at) if sent_at else Q(enqueued_at__isnull=True)
        if MediaItem.objects.filter(previous, pk=item_id, state=MediaItem.State.QUEUED).update(enqueued_at=now):
            resent += analysis_enqueue(media_item_id=item_id)
    IdempotentRequest.objects.filter(created_at__lt=now - timedelta(seconds=settings.VERIFY_IDEMPOTENCY_TTL_S)).delete()
    return ReconcileReport(resent=resent, reclaimed=len(reclaimed_ids), abandoned=abandoned)


# --- evidence integrity ---------------------------------------------------------------------


def _stored_sha256(name: str) -> str:
    """Return the SHA-256 of a stored file, or "" if it is missing."""
    digest = hashlib.sha256()
    try:
        with default_storage.open(name, "rb") as stored:
            for chunk in iter(lambda: stored.read(_HASH_CHUNK_BYTES), b""):
                digest.update(chunk)
    except FileNotFoundError:
        return ""
    return digest.hexdigest()


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
    due = MediaItem.objects.all()
    if checked_before is not None:
        due = due.filter(Q(integrity_checked_at__isnull=True) | Q(integrity_checked_at__lt=checked_before))
    names = list(due.order_by("original").values_list("original", flat=True).distinct()[:limit])
    items_checked = 0
    mismatched: list[int] = []
    for name in names:
        actual = _stored_sha256(name)
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
