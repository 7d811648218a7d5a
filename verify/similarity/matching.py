"""Recycled footage: find the archived media items whose footage a new item shows.

When an analysis has chosen its keyframes, each one is hashed with PDQ (and, for mirrored
copies, its mirror image too) and looked up against every keyframe in the archive. Two media
items match when several *different* pictures match at one consistent time offset, so one black
frame, a logo card or a static shot never makes two clips the same. The README has the
measurements behind the hash and the thresholds.

The database is the source of truth. Each process holds an index of the stored hashes and
catches up on rows added since it last looked; rows deleted since are dropped when the hits
are read back from the database.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from verify.models import FrameHashes, Keyframe, KeyframeFingerprint, MediaItem, MediaMatch
from verify.similarity.dense import DenseFrames, frames_pack
from verify.similarity.dense_matching import FootageMatch, footage_matches_find
from verify.similarity.hashes import PDQ_BITS, FramePdq, HashIndex, hamming_hex, hashes_array

logger = logging.getLogger(__name__)

# Two unrelated pictures differ in about half the bits; a similarity of 0 means that far apart.
_UNRELATED_DISTANCE = PDQ_BITS / 2


# --- index ----------------------------------------------------------------------------------


class ArchiveIndex:
    """This process's index of every stored keyframe fingerprint, kept in step with the database.

    ``refresh`` adds the rows stored since the last call. Ids are not committed in order on
    every database (a transaction may take id 10 and commit after another took 11), so rows
    are re-read from a settled id: the highest id seen at a refresh more than ``settle_s`` ago,
    longer than any transaction that writes fingerprints. Rows already added are skipped.
    """

    def __init__(self, *, settle_s: float = 60.0) -> None:
        self._index = HashIndex(threads=settings.VERIFY_SIMILARITY_THREADS)
        self._settle_s = settle_s
        self._settled_id = 0
        self._recent_ids: set[int] = set()
        self._checkpoints: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def refresh(self) -> int:
        """Add fingerprints stored since the last refresh; return how many were added."""
        with self._lock:
            now = time.monotonic()
            while self._checkpoints and self._checkpoints[0][0] < now - self._settle_s:
                self._settled_id = max(self._settled_id, self._checkpoints.popleft()[1])
            self._recent_ids = {i for i in self._recent_ids if i > self._settled_id}
            rows = (
                KeyframeFingerprint.objects.filter(
                    id__gt=self._settled_id, pdq_quality__gte=settings.VERIFY_PDQ_MIN_QUALITY
                )
                .order_by("id")
                .values_list("id", "pdq")
            )
            new_ids: list[int] = []
            new_hashes: list[str] = []
            for row_id, pdq in rows.iterator(chunk_size=10_000):
                if row_id not in self._recent_ids:
                    new_ids.append(row_id)
                    new_hashes.append(pdq)
            self._index.add(new_ids, hashes_array(new_hashes))
            self._recent_ids.update(new_ids)
            seen = max(self._recent_ids, default=self._settled_id)
            self._checkpoints.append((now, seen))
            return len(new_ids)

    def search(self, hashes: np.ndarray, *, max_distance: int) -> list[list[tuple[int, int]]]:
        """Return (fingerprint id, distance) hits for each query hash."""
        return self._index.search(hashes, max_distance=max_distance)


_archive_index: ArchiveIndex | None = None
_archive_index_lock = threading.Lock()


def archive_index() -> ArchiveIndex:
    """Return this process's archive index, caught up with the database."""
    global _archive_index
    with _archive_index_lock:
        if _archive_index is None:
            _archive_index = ArchiveIndex()
    _archive_index.refresh()
    return _archive_index


# --- matching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameHit:
    """One keyframe of the new item that looks like one keyframe of an archived item."""

    time_s: float
    other_time_s: float
    distance: int
    pdq: str


@dataclass(frozen=True)
class Match:
    """The footage of one archived item found in the new one."""

    other_id: int
    frame_pairs: list[tuple[float, float]]
    distances: list[int]
    time_offset_s: float
    mirrored: bool
    exact: bool
    transformations: tuple[str, ...] = ()

    @property
    def similarity(self) -> float:
        mean = statistics.fmean(self.distances) if self.distances else 0.0
        return round(max(0.0, 1.0 - mean / _UNRELATED_DISTANCE), 3)


def temporal_match(
    hits: Sequence[FrameHit], *, tolerance_s: float, max_distance: int
) -> tuple[float, list[FrameHit]] | None:
    """Return the time offset most hits agree on and one hit per distinct picture at it.

    Each hit votes for the offset (new time - archived time) it implies. At the offset with
    most votes, each new and each archived keyframe is used once, closest hashes first, and a
    hit whose new frame looks like one already kept (a static shot, a repeated card) is not a
    new picture and is left out. None when there are no hits.
    """
    if not hits:
        return None
    offsets = sorted(h.time_s - h.other_time_s for h in hits)
    best_offset, best_votes = offsets[0], 0
    for offset in offsets:
        votes = sum(abs(o - offset) <= tolerance_s for o in offsets)
        if votes > best_votes:
            best_offset, best_votes = offset, votes
    agreeing = [h for h in hits if abs(h.time_s - h.other_time_s - best_offset) <= tolerance_s]
    best_offset = statistics.median(h.time_s - h.other_time_s for h in agreeing)
    kept: list[FrameHit] = []
    used_new: set[float] = set()
    used_old: set[float] = set()
    for hit in sorted(agreeing, key=lambda h: (h.distance, h.time_s)):
        if hit.time_s in used_new or hit.other_time_s in used_old:
            continue
        if any(hamming_hex(hit.pdq, k.pdq) <= max_distance for k in kept):
            continue
        kept.append(hit)
        used_new.add(hit.time_s)
        used_old.add(hit.other_time_s)
    return best_offset, sorted(kept, key=lambda h: h.time_s)


def matches_find(
    *, media_item: MediaItem, fingerprints: Sequence[KeyframeFingerprint], mirrored: dict[float, str]
) -> list[Match]:
    """Return the archived items whose footage this item shows (or shows mirrored).

    ``mirrored`` maps a keyframe time to the PDQ hash of its mirror image; empty when mirrored
    copies are not looked for.
    """
    min_quality = settings.VERIFY_PDQ_MIN_QUALITY
    max_distance = settings.VERIFY_PDQ_MAX_DISTANCE
    usable = [f for f in fingerprints if f.pdq_quality >= min_quality]
    queries = [(f.timestamp_s, f.pdq, False) for f in usable]
    queries += [(f.timestamp_s, mirrored[f.timestamp_s], True) for f in usable if f.timestamp_s in mirrored]
    if not queries:
        return []
    results = archive_index().search(hashes_array(q[1] for q in queries), max_distance=max_distance)
    hit_ids = {hit_id for result in results for hit_id, _ in result}
    # The database decides what exists: a row deleted since it was indexed is not a hit.
    stored = {
        row["id"]: row
        for row in KeyframeFingerprint.objects.filter(id__in=hit_ids)
        .exclude(media_item=media_item)
        .values("id", "media_item_id", "timestamp_s")
    }
    by_item: dict[tuple[int, bool], list[FrameHit]] = defaultdict(list)
    for (time_s, pdq, is_mirrored), result in zip(queries, results, strict=True):
        for hit_id, distance in result:
            row = stored.get(hit_id)
            if row is not None:
                by_item[(row["media_item_id"], is_mirrored)].append(
                    FrameHit(time_s=time_s, other_time_s=row["timestamp_s"], distance=distance, pdq=pdq)
                )
    same_bytes = set(
        MediaItem.objects.filter(sha256=media_item.sha256).exclude(pk=media_item.pk).values_list("pk", flat=True)
    )
    best: dict[int, Match] = {}
    for (other_id, is_mirrored), hits in by_item.items():
        found = temporal_match(hits, tolerance_s=settings.VERIFY_MATCH_TIME_TOLERANCE_S, max_distance=max_distance)
        if found is None:
            continue
        offset, kept = found
        exact = other_id in same_bytes
        if len(kept) < settings.VERIFY_MATCH_MIN_FRAMES and not exact:
            continue
        match = Match(
            other_id=other_id,
            frame_pairs=[(h.time_s, h.other_time_s) for h in kept],
            distances=[h.distance for h in kept],
            time_offset_s=offset,
            mirrored=is_mirrored,
            exact=exact,
        )
        current = best.get(other_id)
        if current is None or len(match.frame_pairs) > len(current.frame_pairs):
            best[other_id] = match
    for other_id in same_bytes - best.keys():
        best[other_id] = Match(other_id, [], [], 0.0, mirrored=False, exact=True)
    return sorted(best.values(), key=lambda m: (-len(m.frame_pairs), m.other_id))


def media_matches_update(
    *, media_item: MediaItem, frames: Sequence[tuple[float, FramePdq]], dense: DenseFrames | None = None
) -> list[Match]:
    """Fingerprint the item's keyframes, find the archived items it matches and store the pairs.

    ``frames`` are the (timestamp, PDQ hashes) of the keyframes just saved. Idempotent: the
    item's fingerprints and its matches (from both sides) are replaced, so a re-run converges
    to the same rows. The fingerprints are committed before the lookup, so of two copies
    analysed at the same time the second to look finds the first, and the pair is stored
    from both sides.
    """
    keyframes = {k.timestamp_s: k for k in Keyframe.objects.filter(media_item=media_item)}
    fingerprints = []
    mirrored: dict[float, str] = {}
    for timestamp_s, frame in frames:
        keyframe = keyframes.get(timestamp_s)
        if keyframe is None:
            continue
        fingerprints.append(
            KeyframeFingerprint(
                keyframe=keyframe,
                media_item=media_item,
                timestamp_s=timestamp_s,
                pdq=frame.pdq,
                pdq_quality=frame.quality,
            )
        )
        if settings.VERIFY_MATCH_MIRRORED:
            mirrored[timestamp_s] = frame.pdq_mirrored
    is_still = Keyframe.Reason.PHOTO in next(iter(keyframes.values())).reasons if keyframes else False
    with transaction.atomic():
        KeyframeFingerprint.objects.filter(media_item=media_item).delete()
        KeyframeFingerprint.objects.bulk_create(fingerprints)
        FrameHashes.objects.filter(media_item=media_item).delete()
        if dense is not None:
            FrameHashes.objects.create(
                media_item=media_item, rate_hz=dense.rate_hz, frame_count=len(dense.frames),
                frames=frames_pack(dense.frames), bars=[round(b, 4) for b in dense.bars], is_still=is_still,
                **{f"{name}_frames": frames_pack(crop.frames) for name, crop in dense.crops.items()},
            )  # fmt: skip
    matches = matches_find(media_item=media_item, fingerprints=fingerprints, mirrored=mirrored)
    if dense is not None:
        matches = _merged(matches, footage_matches_find(media_item=media_item, dense=dense, is_still=is_still))
    rows = []
    for match in matches:
        pairs = [[round(a, 3), round(b, 3)] for a, b in match.frame_pairs]
        common = {
            "similarity": 1.0 if match.exact else match.similarity,
            "matched_frame_count": len(pairs),
            "mirrored": match.mirrored,
            "exact": match.exact,
            "transformations": list(match.transformations),
        }
        rows.append(
            MediaMatch(
                media_item=media_item,
                other_id=match.other_id,
                frame_pairs=pairs,
                time_offset_s=round(match.time_offset_s, 3),
                **common,
            )
        )
        rows.append(
            MediaMatch(
                media_item_id=match.other_id,
                other=media_item,
                frame_pairs=[[b, a] for a, b in pairs],
                time_offset_s=round(-match.time_offset_s, 3),
                **common,
            )
        )
    with transaction.atomic():
        MediaMatch.objects.filter(Q(media_item=media_item) | Q(other=media_item)).delete()
        MediaMatch.objects.bulk_create(rows)
    if matches:
        logger.info("media %s matches media %s", media_item.pk, ", ".join(str(m.other_id) for m in matches))
    return matches


def _merged(keyframe_matches: list[Match], footage_matches: list[FootageMatch]) -> list[Match]:
    """Return one match per archived item, with the keyframe pairs where the keyframe matcher found it too."""
    merged = {m.other_id: m for m in keyframe_matches}
    for found in footage_matches:
        keyed = merged.get(found.other_id)
        if keyed is not None:
            # Both found it: keep the keyframe pairs, which reviewers see side by side.
            merged[found.other_id] = Match(
                other_id=found.other_id,
                frame_pairs=keyed.frame_pairs,
                distances=keyed.distances,
                time_offset_s=keyed.time_offset_s,
                mirrored=keyed.mirrored or "mirrored" in found.transformations,
                exact=keyed.exact,
                transformations=found.transformations,
            )
            continue
        merged[found.other_id] = Match(
            other_id=found.other_id,
            frame_pairs=found.frame_pairs,
            distances=found.distances,
            time_offset_s=found.time_offset_s,
            mirrored="mirrored" in found.transformations,
            exact=False,
            transformations=found.transformations,
        )
    return sorted(merged.values(), key=lambda m: (-len(m.frame_pairs), m.other_id))


# --- reads ----------------------------------------------------------------------------------


def media_match_list(*, media_item: MediaItem, visible_case_ids: Any) -> QuerySet[MediaMatch]:
    """Return the item's matches whose other item is in a case the user may see, best first.

    ``visible_case_ids`` is a queryset (or list) of the case ids the user may see; the caller
    decides visibility, so a user never learns of a case they may not see.
    """
    return (
        MediaMatch.objects.filter(media_item=media_item, other__case__in=visible_case_ids)
        .select_related("other")
        .order_by("-exact", "-matched_frame_count", "-similarity", "other_id")
    )


def seen_before(*, media_items: Iterable[MediaItem], visible_case_ids: Any) -> list[dict[str, Any]]:
    """Return, per other media item, where the footage of these items was also seen, earliest first.

    Exact duplicates (same SHA-256) and near duplicates count; other items of the same case
    and items in cases the user may not see do not.
    """
    items = list(media_items)
    if not items:
        return []
    case_ids = {item.case_id for item in items}
    matches = (
        MediaMatch.objects.filter(media_item__in=items, other__case__in=visible_case_ids)
        .exclude(other__case__in=case_ids)
        .select_related("other")
    )
    found: dict[int, dict[str, Any]] = {}
    for match in matches:
        entry = _seen_entry(match.other, exact=match.exact)
        entry.update(
            similarity=match.similarity,
            matched_frame_count=match.matched_frame_count,
            mirrored=match.mirrored,
            media_item_matched=match.media_item_id,
        )
        current = found.get(match.other_id)
        if current is None or entry["matched_frame_count"] > current["matched_frame_count"]:
            found[match.other_id] = entry
    same_bytes = MediaItem.objects.filter(
        sha256__in={item.sha256 for item in items}, case__in=visible_case_ids
    ).exclude(case__in=case_ids)
    sha_to_item = {item.sha256: item.pk for item in items}
    for other in same_bytes:
        entry = found.setdefault(other.pk, _seen_entry(other, exact=True))
        entry.update(exact=True, similarity=1.0, media_item_matched=sha_to_item[other.sha256])
    return sorted(found.values(), key=lambda e: (e["uploaded_at"], e["media_item"]))


def _seen_entry(other: MediaItem, *, exact: bool) -> dict[str, Any]:
    # The case is named by id only: what a case is, and who may read its title, is workflows'.
    return {
        "media_item": other.pk,
        "uploaded_at": other.uploaded_at,
        "case_id": other.case_id,
        "exact": exact,
        "similarity": 1.0,
        "matched_frame_count": 0,
        "mirrored": False,
        "media_item_matched": None,
    }
