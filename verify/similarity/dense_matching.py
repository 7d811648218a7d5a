"""Match footage on dense frame hashes: continuous shots, short clips, stills, rotated, mirrored and barred copies.

Every frame hashed at a fixed rate (``verify.similarity.dense``) is looked up in all eight
orientations against every stored frame of the archive. For each archived item and orientation:

- **a still on either side** matches at PDQ's single-photo threshold (``VERIFY_PHOTO_MAX_DISTANCE``,
  31 bits) with quality >= 50: the closest frame is the moment the still shows;
- **two videos** match when the hits agree on one time offset, at least half of the new item's
  frames that overlap the archived item in time are among them, and they show at least
  ``VERIFY_MATCH_MIN_FRAMES`` different pictures, or, when the overlap holds fewer different
  pictures (a short clip, a static shot), every one of them, at the single-photo threshold.

A continuous shot gives a hit in nearly every frame, so the half-coverage rule is what carries
it; unrelated footage gives isolated hits at scattered offsets.

An item the whole frames do not match is looked up again, under the same rules, on the
frames' parts (``dense.CROPS``): the central 70 % and the left and right 60 %, each against the
same part of archived frames, find a copy with a caption band or a large logo (``logo``), and
the central 90 % against whole frames, both ways, a copy cropped by about a tenth
(``cropped``). The measurements, with the look-alikes that must still not match, are in
docs/recycled-footage.md.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from verify.models import FrameHashes, MediaItem
from verify.similarity.dense import DIHEDRAL_NAMES, DenseFrames, frames_unpack
from verify.similarity.hashes import PDQ_BITS
from verify.similarity.index import MultiHashIndex, range_search_flat

# An index id is the media item id and the frame's index within it.
_FRAME_BITS = 24
_MAX_PAIRS = 60


class DenseIndex:
    """This process's index of every stored dense frame hash, kept in step with the database.

    Rows are re-read from a settled id, as ``matching.ArchiveIndex`` explains; a re-analysed
    item's new row adds its frames again under the same ids, and hits are de-duplicated.
    """

    def __init__(self, *, field: str = "frames", settle_s: float = 60.0) -> None:
        self._field = field
        self._index = MultiHashIndex(threads=settings.VERIFY_SIMILARITY_THREADS)
        self._settle_s = settle_s
        self._settled_id = 0
        self._recent_ids: set[int] = set()
        self._checkpoints: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._index)

    def refresh(self) -> int:
        """Add the frames of rows stored since the last refresh; return how many frames were added."""
        added = 0
        with self._lock:
            now = time.monotonic()
            while self._checkpoints and self._checkpoints[0][0] < now - self._settle_s:
                self._settled_id = max(self._settled_id, self._checkpoints.popleft()[1])
            self._recent_ids = {i for i in self._recent_ids if i > self._settled_id}
            rows = FrameHashes.objects.filter(id__gt=self._settled_id).order_by("id")
            for row_id, item_id, data in rows.values_list("id", "media_item_id", self._field).iterator(chunk_size=500):
                if row_id in self._recent_ids:
                    continue
                frames = frames_unpack(data)
                keep = np.flatnonzero(frames["quality"] >= settings.VERIFY_PDQ_MIN_QUALITY)
                self._index.add(((item_id << _FRAME_BITS) | keep).tolist(), frames["pdq"][keep])
                self._recent_ids.add(row_id)
                added += len(keep)
            self._checkpoints.append((now, max(self._recent_ids, default=self._settled_id)))
        return added

    def search(self, hashes: np.ndarray, *, max_distance: int) -> list[list[tuple[int, int]]]:
        """Return (index id, distance) hits for each query hash."""
        return self._index.search(hashes, max_distance=max_distance)


_dense_indexes: dict[str, DenseIndex] = {}
_dense_index_lock = threading.Lock()


def dense_index(field: str = "frames") -> DenseIndex:
    """Return this process's index of one FrameHashes field (whole frames or a crop), caught up with the database."""
    with _dense_index_lock:
        index = _dense_indexes.get(field)
        if index is None:
            index = _dense_indexes[field] = DenseIndex(field=field)
    index.refresh()
    return index


@dataclass(frozen=True)
class FootageMatch:
    """The footage of one archived item found in the new one, from dense frames."""

    other_id: int
    frame_pairs: list[tuple[float, float]]
    distances: list[int]
    time_offset_s: float
    transformations: tuple[str, ...]

    @property
    def similarity(self) -> float:
        mean = statistics.fmean(self.distances) if self.distances else 0.0
        return round(max(0.0, 1.0 - mean / (PDQ_BITS / 2)), 3)


def _distinct(hashes: np.ndarray, radius: int) -> int:
    """Return how many different pictures the hashes show: each is farther than radius from those before."""
    kept: list[np.ndarray] = []
    for bits in np.unpackbits(hashes, axis=1):
        if all(int(np.count_nonzero(bits != k)) > radius for k in kept):
            kept.append(bits)
    return len(kept)


def _video_match(
    query: DenseFrames, other: np.ndarray, hits: Sequence[tuple[int, int, int]], usable: np.ndarray
) -> tuple[float, dict[int, tuple[int, int]]] | None:
    """Return the offset and {query frame: (other frame, distance)} of a video-to-video match, or None."""
    tolerance_s = 0.6 / query.rate_hz
    times = query.frames["time_ms"] / 1000
    other_times = other["time_ms"] / 1000
    hit_array = np.asarray(hits, dtype=np.int64).reshape(-1, 3)
    offsets = times[hit_array[:, 0]] - other_times[hit_array[:, 1]]
    # A slow pan is within the wide radius of itself a second earlier or later, so several
    # offsets get a vote from every frame: of those, the true one is where the frames are closest.
    best_score, best_offset = (0, 0), 0.0
    closest = np.empty(len(times), dtype=np.int64)
    for offset in np.unique(offsets):
        near = np.abs(offsets - offset) <= tolerance_s
        closest.fill(PDQ_BITS + 1)
        np.minimum.at(closest, hit_array[near, 0], hit_array[near, 2])
        voters = closest[closest <= PDQ_BITS]
        score = (len(voters), -int(voters.sum()))
        if score > best_score:
            best_score, best_offset = score, float(offset)
    matched: dict[int, tuple[int, int]] = {}
    for i in np.flatnonzero(np.abs(offsets - best_offset) <= tolerance_s):
        q, o, distance = hits[int(i)]
        if q not in matched or distance < matched[q][1]:
            matched[q] = (o, distance)
    shifted = times[usable] - best_offset
    overlap = usable[(shifted >= -tolerance_s) & (shifted <= other_times.max() + tolerance_s)]
    if not len(overlap) or len(matched) < 0.5 * len(overlap):
        return None
    photo_radius = settings.VERIFY_PHOTO_MAX_DISTANCE
    overlap_pictures = _distinct(query.frames["pdq"][overlap], photo_radius)
    matched_pictures = _distinct(query.frames["pdq"][sorted(matched)], photo_radius)
    needed = settings.VERIFY_MATCH_MIN_FRAMES
    # Dense frames give far more chances than keyframes to line up loose look-alikes (dark,
    # low-contrast footage sits within 64 bits of other such footage): at least one picture must
    # match as a photo would.
    close = [q for q, (_, distance) in matched.items() if distance <= photo_radius]
    close_pictures = _distinct(query.frames["pdq"][close], photo_radius) if close else 0
    if overlap_pictures >= needed:
        return (best_offset, matched) if matched_pictures >= needed and close_pictures >= 1 else None
    # Fewer different pictures than a match needs: every one must match as a photo would.
    if close_pictures < overlap_pictures:
        return None
    return best_offset, matched


def _frame_hits(queries: np.ndarray, usable: np.ndarray, other: np.ndarray) -> list[tuple[int, int, int]]:
    """Return (query frame, other frame, distance) of every pair within VERIFY_PDQ_MAX_DISTANCE."""
    kept = np.flatnonzero(other["quality"] >= settings.VERIFY_PDQ_MIN_QUALITY)
    q, o, d = range_search_flat(queries, other["pdq"][kept], settings.VERIFY_PDQ_MAX_DISTANCE)
    return list(zip(usable[q].tolist(), kept[o].tolist(), d.tolist(), strict=True))


def dense_matches_find(
    *,
    media_item: MediaItem,
    dense: DenseFrames,
    is_still: bool,
    field: str = "frames",
    shows: tuple[str, ...] = (),
    known: Collection[int] = (),
) -> list[FootageMatch]:
    """Return the archived items whose footage (or photo) this item's dense frames show.

    ``field`` is the stored FrameHashes field looked up (whole frames or a part), ``shows`` the
    transformations such a match shows, and ``known`` the items already matched, not looked at.
    """
    usable = np.flatnonzero(dense.frames["quality"] >= settings.VERIFY_PDQ_MIN_QUALITY)
    if not len(usable):
        return []
    queries = dense.dihedral[usable].reshape(-1, dense.dihedral.shape[2])
    # Every match needs a picture within the single-photo radius, the radius the index's tables
    # answer: the index finds the items, and their wider hits are read from their own frames.
    seed_radius = min(settings.VERIFY_PHOTO_MAX_DISTANCE, settings.VERIFY_PDQ_MAX_DISTANCE)
    results = dense_index(field).search(queries, max_distance=seed_radius)
    turns = dense.dihedral.shape[1]
    groups = {(hit_id >> _FRAME_BITS, row % turns) for row, result in enumerate(results) for hit_id, _ in result}
    groups = {(other_id, variant) for other_id, variant in groups if other_id not in known}
    rows = FrameHashes.objects.filter(media_item_id__in={k[0] for k in groups}).exclude(media_item=media_item)
    others = {row.media_item_id: row for row in rows.only("media_item_id", "bars", "is_still", field)}
    best: dict[int, FootageMatch] = {}
    for other_id, variant in sorted(groups):
        stored = others.get(other_id)
        if stored is None:
            continue  # deleted, or this item itself
        other = frames_unpack(getattr(stored, field))
        hits = _frame_hits(dense.dihedral[usable, variant], usable, other)
        transformations = [*([DIHEDRAL_NAMES[variant]] if variant else []), *shows]
        if dense.has_bars or any(stored.bars):
            transformations.append("bars_removed")
        if is_still or stored.is_still:
            close = [h for h in hits if h[2] <= settings.VERIFY_PHOTO_MAX_DISTANCE]
            if not close:
                continue
            q, o, distance = min(close, key=lambda h: h[2])
            if is_still != stored.is_still:
                transformations.append("still_from_video")
            pairs_s = [(float(dense.frames["time_ms"][q]) / 1000, float(other["time_ms"][o]) / 1000)]
            match = FootageMatch(other_id, pairs_s, [distance], pairs_s[0][0] - pairs_s[0][1], tuple(transformations))
        else:
            found = _video_match(dense, other, hits, usable)
            if found is None:
                continue
            offset, matched = found
            chosen = sorted(matched.items())[:_MAX_PAIRS]
            match = FootageMatch(
                other_id=other_id,
                frame_pairs=[
                    (float(dense.frames["time_ms"][q]) / 1000, float(other["time_ms"][o]) / 1000)
                    for q, (o, _) in chosen
                ],
                distances=[d for _, (_, d) in sorted(matched.items())],
                time_offset_s=offset,
                transformations=tuple(transformations),
            )
        current = best.get(other_id)
        if current is None or (len(match.frame_pairs), match.similarity) > (
            len(current.frame_pairs),
            current.similarity,
        ):
            best[other_id] = match
    return sorted(best.values(), key=lambda m: (-len(m.frame_pairs), m.other_id))


def footage_matches_find(*, media_item: MediaItem, dense: DenseFrames, is_still: bool) -> list[FootageMatch]:
    """Return the archived items this item's footage shows: on whole frames, else on their parts."""
    matches = {m.other_id: m for m in dense_matches_find(media_item=media_item, dense=dense, is_still=is_still)}
    lookups: list[tuple[DenseFrames, str, str]] = []
    for name in ("inner", "left", "right"):  # an overlay on either side
        if name in dense.crops:
            lookups.append((dense.crops[name], f"{name}_frames", "logo"))
    if "cropped" in dense.crops:
        lookups.append((dense, "cropped_frames", "cropped"))  # this item is the cropped copy
        lookups.append((dense.crops["cropped"], "frames", "cropped"))  # the archived item is
    for query, field, transformation in lookups:
        found = dense_matches_find(
            media_item=media_item, dense=query, is_still=is_still, field=field, shows=(transformation,), known=matches
        )
        for match in found:
            matches.setdefault(match.other_id, match)
    return sorted(matches.values(), key=lambda m: (-len(m.frame_pairs), m.other_id))
