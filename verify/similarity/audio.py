"""Same audio: find the archived media items whose soundtrack a new item carries.

Recycled footage is often re-cut, cropped or overlaid until its pictures no longer match, while
the soundtrack goes along untouched. Each item's first audio track gets a Chromaprint
fingerprint (ffmpeg's ``chromaprint`` muxer, the algorithm AcoustID uses): about eight 32-bit
sub-fingerprints per second, each bit one comparison of chroma energies. Two tracks are the
same audio when, at one time offset, their overlapping sub-fingerprints differ in few bits
(the bit error rate, BER). Offsets to try come from sub-fingerprints whose top 20 bits agree
exactly, as AcoustID's matcher does, so a comparison costs about the length of the two prints
rather than their product.

Silent tracks, and tracks that hold one steady tone (a test tone, a hum), give no fingerprint:
their sub-fingerprints barely change, so any two of them would look alike. docs/recycled-footage.md
has the measurements behind the thresholds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from verify import ffmpeg
from verify.models import AudioFingerprint, MediaItem, MediaMatch
from verify.safeguards import AnalysisFailure, input_limits, resource_limits

logger = logging.getLogger(__name__)

SAME_AUDIO = "same_audio"
CHROMAPRINT_ALGORITHM = 1
# Chromaprint resamples to 11,025 Hz and moves its 4,096-sample window by 1,365 samples.
SUB_FINGERPRINTS_PER_S = 11025 / 1365
# The loudest sample of a silent track: AAC-encoded digital silence reads about -91 dBFS.
SILENT_MAX_VOLUME_DB = -60.0
# A print with fewer different sub-fingerprints than this (or than this share of its length)
# holds a steady tone, not a soundtrack: a 440 Hz sine gives one value for 12 s.
MIN_DISTINCT = 16
MIN_DISTINCT_SHARE = 0.25
# Same audio: at most this bit error rate over at least this many overlapping sub-fingerprints
# (about 2.5 s). Re-encodes measured at most 0.05; unrelated tracks at least 0.23 (two pink
# noises, the closest pair); see docs/recycled-footage.md.
MAX_BIT_ERROR_RATE = 0.15
MIN_OVERLAP = 20
# Offsets tried: the ones most top-20-bit agreements vote for, and their neighbours.
_CANDIDATE_OFFSETS = 8
_KEY_SHIFT = 12

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True)
class AudioPrint:
    """The raw Chromaprint sub-fingerprints of one audio track and how loud it is."""

    values: np.ndarray  # uint32
    max_volume_db: float

    @property
    def usable(self) -> bool:
        """Return whether the track is loud and varied enough to compare."""
        distinct = len(np.unique(self.values))
        return (
            self.max_volume_db > SILENT_MAX_VOLUME_DB
            and len(self.values) >= MIN_OVERLAP
            and distinct >= max(MIN_DISTINCT, MIN_DISTINCT_SHARE * len(self.values))
        )


@dataclass(frozen=True)
class Alignment:
    """Where two prints line up best: the offset in sub-fingerprints (a minus b), the overlap and its BER."""

    offset: int
    overlap: int
    bit_error_rate: float

    @property
    def offset_s(self) -> float:
        return self.offset / SUB_FINGERPRINTS_PER_S

    @property
    def similarity(self) -> float:
        """Return 1 for identical bits, 0 for as different as unrelated audio (half the bits)."""
        return round(max(0.0, 1.0 - 2.0 * self.bit_error_rate), 3)

    @property
    def same_audio(self) -> bool:
        return self.overlap >= MIN_OVERLAP and self.bit_error_rate <= MAX_BIT_ERROR_RATE


@dataclass(frozen=True)
class AudioMatch:
    """The soundtrack of one archived item heard in the new one."""

    other_id: int
    alignment: Alignment


def audio_print_compute(path: Path, *, workdir: Path) -> AudioPrint | None:
    """Fingerprint the first audio track of the file at path; None when it has no usable sound.

    A track ffmpeg cannot decode gives no fingerprint rather than failing the analysis: the
    pictures are the evidence, and a broken soundtrack claims nothing. Running out of time
    fails the analysis as the picture pass does.
    """
    output = workdir / "audio.chromaprint"
    argv = ffmpeg.audio_fingerprint_argv(path, ffmpeg=settings.FFMPEG_BINARY, output=output, limits=input_limits())
    try:
        result = ffmpeg.run(
            argv, timeout_s=settings.VERIFY_FFMPEG_TIMEOUT_S, limits=resource_limits(), max_stderr_bytes=1024**2
        )
    except ffmpeg.FFmpegError as exc:
        if exc.timed_out:
            raise AnalysisFailure("analysis_timeout", "Decoding the audio took longer than allowed.") from exc
        logger.warning("no audio fingerprint for %s: ffmpeg exit code %s", path.name, exc.exit_code)
        return None
    max_volume_db = ffmpeg.parse_max_volume_db(result.stderr)
    if max_volume_db is None or not output.exists():
        return None
    found = AudioPrint(values=np.fromfile(output, dtype="<u4"), max_volume_db=max_volume_db)
    return found if found.usable else None


def _bit_errors(a: np.ndarray, b: np.ndarray) -> int:
    return int(_POPCOUNT[np.bitwise_xor(a, b).view(np.uint8)].sum())


def _ber_at(a: np.ndarray, b: np.ndarray, offset: int) -> Alignment:
    x, y = a[max(offset, 0) :], b[max(-offset, 0) :]
    overlap = min(len(x), len(y))
    if overlap <= 0:
        return Alignment(offset, 0, 1.0)
    return Alignment(offset, overlap, _bit_errors(x[:overlap], y[:overlap]) / (32 * overlap))


def prints_align(a: np.ndarray, b: np.ndarray) -> Alignment | None:
    """Return the best alignment of two prints among the offsets their exact top-20-bit agreements vote for.

    None when no sub-fingerprint agrees at all or no candidate overlaps by ``MIN_OVERLAP``.
    """
    keys_a, keys_b = a >> _KEY_SHIFT, b >> _KEY_SHIFT
    order = np.argsort(keys_b, kind="stable")
    sorted_b = keys_b[order]
    first = np.searchsorted(sorted_b, keys_a, side="left")
    counts = np.searchsorted(sorted_b, keys_a, side="right") - first
    if not counts.any():
        return None
    # Every (i, j) with equal keys votes for the offset i - j.
    i = np.repeat(np.arange(len(a)), counts)
    starts = np.repeat(first - np.cumsum(counts) + counts, counts)
    j = order[starts + np.arange(len(i))]
    offsets, votes = np.unique(i - j, return_counts=True)
    best = offsets[np.argsort(-votes, kind="stable")[:_CANDIDATE_OFFSETS]]
    tried = {int(o) + d for o in best for d in (-1, 0, 1)}
    found = [_ber_at(a, b, offset) for offset in sorted(tried)]
    found = [f for f in found if f.overlap >= MIN_OVERLAP]
    return min(found, key=lambda f: (f.bit_error_rate, -f.overlap)) if found else None


def audio_matches_find(*, media_item: MediaItem, values: np.ndarray) -> list[AudioMatch]:
    """Return the other items whose stored fingerprint is the same audio as these values, closest first.

    A linear scan over the stored fingerprints; docs/recycled-footage.md says how it scales.
    """
    matches = []
    stored = AudioFingerprint.objects.exclude(media_item=media_item).values_list("media_item_id", "fingerprint")
    for other_id, data in stored.iterator(chunk_size=200):
        alignment = prints_align(values, np.frombuffer(bytes(data), dtype="<u4"))
        if alignment is not None and alignment.same_audio:
            matches.append(AudioMatch(other_id=other_id, alignment=alignment))
    return sorted(matches, key=lambda m: (m.alignment.bit_error_rate, m.other_id))


def audio_matches_update(*, media_item: MediaItem, audio: AudioPrint | None) -> list[AudioMatch]:
    """Store the item's fingerprint, find the items with the same audio and record it on their matches.

    Runs after the picture matches are written (``matching.media_matches_update``). Where the
    pictures match too, ``same_audio`` is added to that match's transformations; otherwise a
    match row with no frame pairs says the soundtrack alone matched. Idempotent: the item's
    earlier audio evidence is taken off its matches (both sides) before the new is written. The
    fingerprint is committed before the lookup, as the picture matcher's are.
    """
    with transaction.atomic():
        AudioFingerprint.objects.filter(media_item=media_item).delete()
        if audio is not None:
            AudioFingerprint.objects.create(
                media_item=media_item,
                algorithm=CHROMAPRINT_ALGORITHM,
                item_count=len(audio.values),
                fingerprint=np.ascontiguousarray(audio.values, dtype="<u4").tobytes(),
                max_volume_db=round(audio.max_volume_db, 1),
            )
        _audio_evidence_clear(media_item)
    matches = [] if audio is None else audio_matches_find(media_item=media_item, values=audio.values)
    for match in matches:
        with transaction.atomic():
            _same_audio_record(media_item.pk, match.other_id, match.alignment.similarity, match.alignment.offset_s)
            _same_audio_record(match.other_id, media_item.pk, match.alignment.similarity, -match.alignment.offset_s)
    if matches:
        logger.info("media %s has the audio of media %s", media_item.pk, ", ".join(str(m.other_id) for m in matches))
    return matches


def _audio_evidence_clear(media_item: MediaItem) -> None:
    rows = MediaMatch.objects.select_for_update().filter(Q(media_item=media_item) | Q(other=media_item))
    for row in rows.filter(audio_similarity__isnull=False):
        pictures = [t for t in row.transformations if t != SAME_AUDIO]
        if row.matched_frame_count == 0 and not row.exact:
            row.delete()  # the audio was all that matched
            continue
        row.transformations, row.audio_similarity, row.audio_time_offset_s = pictures, None, None
        row.save(update_fields=["transformations", "audio_similarity", "audio_time_offset_s"])


def _same_audio_record(item_id: int, other_id: int, similarity: float, offset_s: float) -> None:
    row, created = MediaMatch.objects.select_for_update().get_or_create(
        media_item_id=item_id,
        other_id=other_id,
        defaults={
            "similarity": similarity,
            "matched_frame_count": 0,
            "frame_pairs": [],
            "time_offset_s": round(offset_s, 3),
            "transformations": [SAME_AUDIO],
            "audio_similarity": similarity,
            "audio_time_offset_s": round(offset_s, 3),
        },
    )
    if created:
        return
    if SAME_AUDIO not in row.transformations:
        row.transformations = [*row.transformations, SAME_AUDIO]
    row.audio_similarity, row.audio_time_offset_s = similarity, round(offset_s, 3)
    row.save(update_fields=["transformations", "audio_similarity", "audio_time_offset_s"])
