"""The analysis pipeline: probe, keyframes, hashes and contact sheet of one media item.

The job around it (claiming, leases, retries, the terminal state) is ``verify.job_states`` and
``verify.leases``; the limits that refuse hostile files are ``verify.safeguards``; the files it
derives from the original are stored by ``verify.derivatives``.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from verify import decoding, derivatives, exif, ffmpeg, job_states, leases, ocr, photo_analysis, photos
from verify.frame_digests import FrameDigester, frame_digest
from verify.frames import (
    REASON_SCENE,
    CandidateFrame,
    frames_judge,
    keyframes_choose,
    scene_cuts,
)
from verify.models import MediaItem, MediaMetadata
from verify.originals import original_local_path
from verify.safeguards import (
    AnalysisFailure,
    fields_fit,
    input_limits,
    probe_gates,
    refusals_raise,
    resource_limit_raise,
    resource_limits,
    strings_truncate,
)
from verify.similarity import audio, dense, matching

logger = logging.getLogger(__name__)

# Progress percent at the start of each stage; the keyframe pass fills the span to HASHES.
_STAGE_PERCENT: dict[str, int] = {
    MediaItem.Stage.FETCHING: 0,
    MediaItem.Stage.PROBE: 2,
    MediaItem.Stage.KEYFRAMES: 5,
    MediaItem.Stage.HASHES: 80,
    MediaItem.Stage.CONTACT_SHEET: 90,
}
_PROGRESS_WRITE_INTERVAL_S = 1.0
# ffmpeg's own chatter (showinfo lines, decoder warnings) is kept up to this size per run.
_MAX_DIAGNOSTICS_BYTES = 64 * 1024**2


def analysis_run(*, media_item_id: int) -> None:
    """Analyse one media item: probe, keyframes, hashes, contact sheet.

    Safe to deliver more than once: the item is claimed with a conditional UPDATE (see
    ``job_states.job_claim``), and the outputs are replaced wholesale, so a re-run converges to the
    same rows and files.
    """
    # An item submitted as a link has no original until its fetching stage stores one.
    unfetched = MediaItem.objects.filter(pk=media_item_id, sha256__isnull=True).exists()
    stage = MediaItem.Stage.FETCHING if unfetched else MediaItem.Stage.PROBE
    item = job_states.job_claim(media_item_id=media_item_id, stage=stage, progress_percent=_STAGE_PERCENT[stage])
    if item is None:
        return
    with leases.job_lease(item):
        _analyse_and_record(item)


def _analyse_and_record(item: MediaItem) -> None:
    media_item_id = item.pk
    try:
        _analyse(item)
    except leases.JobLost:
        logger.warning("analysis of media %s stopped: the job was taken from this worker", media_item_id)
    except AnalysisFailure as failure:
        job_states.job_finish(item, state=MediaItem.State.FAILED, code=failure.code, message=failure.message)
    except Exception as exc:
        logger.exception("analysis of media %s was interrupted", media_item_id)
        if item.attempts < settings.VERIFY_ANALYSIS_MAX_ATTEMPTS:
            job_states.job_requeue(item)
            raise job_states.AnalysisRetry(str(exc)) from exc
        job_states.job_finish(
            item,
            state=MediaItem.State.FAILED,
            code="analysis_error",
            message=(
                f"Analysis stopped after {item.attempts} attempts on an internal error. "
                "The original is kept; an operator can find the cause in the worker log."
            ),
        )
    else:
        job_states.job_finish(item, state=MediaItem.State.SUCCEEDED)


def _analyse(item: MediaItem) -> None:
    if item.sha256 is None:
        # Imported here: yt-dlp adds about 40 MB to every pool process, and only links need it.
        from verify.fetching import fetch

        fetch.media_item_fetch(item)
        item.refresh_from_db()
        _progress(item, MediaItem.Stage.PROBE)
    with original_local_path(item) as path:
        kind = photo_analysis.file_kind(path)
        tags = photo_analysis.exif_tags(path)
        facts = exif.parse_exif(tags)
        photo_analysis.credentials_save(item, path, kind)
        if kind in photos.STILL_KINDS:
            _photo_analyse(item, path, kind=kind, tags=tags, facts=facts)
            return
        raw, probe = _probe(path)
        values = {name: getattr(probe, name) for name in MediaMetadata.normalised_field_names()}
        _metadata_save(item, raw, values, tags=tags, facts=facts, thumbnail_distance_bits=None)
        probe_gates(probe)
        if not probe.has_video and not probe.has_audio:
            raise AnalysisFailure(
                "no_media_streams", "The file has no video or audio stream, so there is nothing to analyse."
            )
        if not probe.has_video:
            _audio_match(item, path, has_audio=probe.has_audio)
            return  # audio-only evidence: the metadata and the soundtrack are the whole analysis
        with tempfile.TemporaryDirectory(prefix="verify-frames-") as work:
            workdir = Path(work)
            candidates, digests, report, dense_frames = _keyframes_extract(item, path, probe, workdir)
            decoding.decoding_save(media_item=item, report=report)
            _progress(item, MediaItem.Stage.HASHES)
            chosen, truncated = keyframes_choose(
                candidates,
                max_count=settings.VERIFY_MAX_KEYFRAMES,
                near_duplicate_bits=settings.VERIFY_NEAR_DUPLICATE_BITS,
            )
            derivatives.keyframes_save(item, chosen, truncated=truncated)
            ocr.media_item_ocr(item, {c.frame.timestamp_s: c.frame.path for c in chosen})
            _progress(item, MediaItem.Stage.CONTACT_SHEET)
            kept = [(c.frame.timestamp_s, digests.digest(c.frame.path)) for c in chosen]
            tiles = [(digest.tile(), timestamp_s) for timestamp_s, digest in kept]
            cuts = {index for index, c in enumerate(chosen) if REASON_SCENE in c.reasons}
            derivatives.contact_sheet_save(item, tiles, workdir, cuts=cuts, duration_s=probe.duration_s)
            matching.media_matches_update(
                media_item=item, frames=[(t, digest.pdq) for t, digest in kept], dense=dense_frames
            )
        # Fast mode skips the passes beyond the key frames: no dense frames, no audio fingerprint.
        _audio_match(item, path, has_audio=probe.has_audio and item.mode != MediaItem.Mode.FAST)


def _audio_match(item: MediaItem, path: Path, *, has_audio: bool) -> None:
    # After the picture matches are written: same audio is added to them or stored beside them.
    with tempfile.TemporaryDirectory(prefix="verify-audio-") as work:
        found = audio.audio_print_compute(path, workdir=Path(work)) if has_audio else None
    audio.audio_matches_update(media_item=item, audio=found)


def _probe(path: Path) -> tuple[dict[str, Any], ffmpeg.ProbeResult]:
    argv = ffmpeg.probe_argv(path, ffprobe=settings.FFPROBE_BINARY, limits=input_limits())
    try:
        result = ffmpeg.run(
            argv,
            timeout_s=settings.VERIFY_FFPROBE_TIMEOUT_S,
            limits=resource_limits(),
            max_stdout_bytes=settings.VERIFY_MAX_METADATA_BYTES,
            max_stderr_bytes=_MAX_DIAGNOSTICS_BYTES,
        )
        refusals_raise(ffmpeg.parse_refusals(result.stderr))
        raw = ffmpeg.parse_probe_json(result.stdout)
    except ffmpeg.FFmpegError as exc:
        if exc.timed_out:
            raise AnalysisFailure("probe_timeout", "Reading the file's structure took too long.") from exc
        if exc.output_exceeded == "stdout":
            limit_mb = settings.VERIFY_MAX_METADATA_BYTES / 1024**2
            raise AnalysisFailure(
                "metadata_too_large", f"The file's metadata is larger than the limit of {limit_mb:g} MB."
            ) from exc
        refusals_raise(ffmpeg.parse_refusals(exc.stderr_tail))
        resource_limit_raise(exc)
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


def probe_without_server_path(raw: dict[str, Any]) -> dict[str, Any]:
    """Return ffprobe's answer without ``format.filename``: the path of the file on this server."""
    fmt = raw.get("format")
    if not isinstance(fmt, dict) or "filename" not in fmt:
        return raw
    return {**raw, "format": {key: value for key, value in fmt.items() if key != "filename"}}


def _metadata_save(
    item: MediaItem,
    raw: dict[str, Any],
    probe_values: dict[str, Any],
    *,
    tags: dict[str, Any],
    facts: exif.ExifFacts,
    thumbnail_distance_bits: int | None,
) -> None:
    raw = probe_without_server_path(raw)
    stored_raw, raw_truncated = strings_truncate(raw, max_chars=settings.VERIFY_MAX_METADATA_VALUE_CHARS)
    stored_tags, tags_truncated = photo_analysis.stored_exiftool_answer(tags)
    values = photo_analysis.metadata_values(probe_values, facts)
    values["signals"] = photo_analysis.signals_for(
        item, facts=facts, tags=tags, thumbnail_distance_bits=thumbnail_distance_bits
    )
    values = {"raw": stored_raw, "exiftool": stored_tags, **values}
    MediaMetadata.objects.update_or_create(
        media_item=item, defaults=fields_fit(MediaMetadata, values, truncated=raw_truncated or tags_truncated)
    )


def _photo_analyse(item: MediaItem, path: Path, *, kind: str, tags: dict[str, Any], facts: exif.ExifFacts) -> None:
    """Analyse a still: the keyframe is the picture itself, upright and reduced; no ffmpeg pass."""
    with tempfile.TemporaryDirectory(prefix="verify-photo-") as work:
        derived = Path(work) / "photo.jpg"
        decoded = photo_analysis.photo_decode(path, kind, derived)
        distance = photo_analysis.thumbnail_distance(path, kind)
        _metadata_save(
            item, {}, photo_analysis.still_probe_values(decoded), tags=tags, facts=facts,
            thumbnail_distance_bits=distance,
        )  # fmt: skip
        _progress(item, MediaItem.Stage.HASHES)
        digest = frame_digest(derived)
        frame = ffmpeg.SelectedFrame(path=derived, timestamp_s=0.0, pict_type="I")
        candidate = CandidateFrame(
            frame=frame, reasons=("photo",), scene_score=None, phash=digest.phash, width=digest.width,
            height=digest.height,
        )  # fmt: skip
        derivatives.keyframes_save(item, [candidate], truncated=False, decoder=photos.decoder_version())
        ocr.media_item_ocr(item, {0.0: derived})
        _progress(item, MediaItem.Stage.CONTACT_SHEET)
        derivatives.contact_sheet_save(item, [(digest.tile(), 0.0)], Path(work))
        matching.media_matches_update(media_item=item, frames=[(0.0, digest.pdq)], dense=dense.still_hash(derived))


def _keyframes_extract(
    item: MediaItem, path: Path, probe: ffmpeg.ProbeResult, workdir: Path
) -> tuple[list[CandidateFrame], FrameDigester, decoding.DecodeReport, dense.DenseFrames | None]:
    _progress(item, MediaItem.Stage.KEYFRAMES)
    out_dir = workdir / "frames"
    out_dir.mkdir()
    scores_file = workdir / "scene-scores.txt"
    fast = item.mode == MediaItem.Mode.FAST
    interval_s = settings.VERIFY_KEYFRAME_INTERVAL_S
    # Unconfirmed candidates and near-duplicates are dropped afterwards, so let ffmpeg write
    # more than the cap.
    max_frames = settings.VERIFY_MAX_KEYFRAMES * 4
    dense_output = None
    if not fast and probe.display_width and probe.display_height:
        width, height = dense.dense_size(probe.display_width, probe.display_height)
        dense_output = ffmpeg.DenseOutput(workdir / "dense.rgb", width, height, settings.VERIFY_DENSE_RATE_HZ)
    argv = ffmpeg.keyframes_argv(
        path,
        ffmpeg=settings.FFMPEG_BINARY,
        out_dir=out_dir,
        candidates_file=workdir / "candidate-scores.txt",
        scores_file=scores_file,
        scene_candidate_threshold=None if fast else settings.VERIFY_SCENE_CANDIDATE_THRESHOLD,
        interval_s=interval_s,
        max_frames=max_frames,
        decoder_threads=settings.VERIFY_DECODER_THREADS,
        limits=input_limits(),
        dense=dense_output,
    )
    try:
        with FrameDigester(out_dir) as digests:  # hashes the frames while ffmpeg decodes
            result = ffmpeg.run(
                argv,
                timeout_s=settings.VERIFY_FFMPEG_TIMEOUT_S,
                limits=resource_limits(),
                on_stdout_line=_keyframe_progress_reporter(item, probe.duration_s),
                on_tick=functools.partial(leases.job_lease_check, item),
                max_stdout_bytes=_MAX_DIAGNOSTICS_BYTES,
                max_stderr_bytes=_MAX_DIAGNOSTICS_BYTES,
            )
    except ffmpeg.FFmpegError as exc:
        if exc.timed_out:
            raise AnalysisFailure("analysis_timeout", "Decoding the video took longer than allowed.") from exc
        refusals_raise(ffmpeg.parse_refusals(exc.stderr_tail))
        resource_limit_raise(exc)
        raise AnalysisFailure(
            "decode_failed", f"ffmpeg could not decode the video stream (exit code {exc.exit_code})."
        ) from exc
    frames = ffmpeg.parse_selected_frames(stderr=result.stderr, out_dir=out_dir)
    if not frames:
        raise AnalysisFailure("no_decodable_frames", "The video stream holds no frame that could be decoded.")
    scores = ffmpeg.parse_scene_scores(scores_file.read_text()) if scores_file.exists() else []
    report = decoding.decode_report(
        declared_duration_s=probe.video_duration_s or probe.duration_s,
        declared_frame_count=probe.frame_count,
        decoded_end_s=ffmpeg.parse_progress_end_s(result.stdout),
        # The scene branch sees every decoded frame; fast mode decodes key frames only.
        decoded_frame_count=None if fast else len(scores),
        key_frame_times_s=[frame.timestamp_s for frame in frames] if fast else None,
        stopped_at_cap=fast and len(frames) >= max_frames,
        errors=ffmpeg.parse_decode_errors(result.stderr, input_path=path),
    )
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
    dense_frames = None
    if dense_output is not None:
        dense_frames = dense.raw_video_hash(
            dense_output.path, width=dense_output.width, height=dense_output.height, rate_hz=dense_output.rate_hz
        )
    return candidates, digests, report, dense_frames


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
        MediaItem.objects.filter(pk=item.pk, lease_owner=item.lease_owner, progress_percent__lt=percent).update(
            progress_percent=percent, updated_at=timezone.now()
        )

    return report


def _progress(item: MediaItem, stage: str) -> None:
    leases.job_lease_check(item)
    MediaItem.objects.filter(pk=item.pk, lease_owner=item.lease_owner).update(
        stage=stage,
        progress_percent=_STAGE_PERCENT[stage],
        updated_at=timezone.now(),
    )
