"""Measure the hash indexes: build time, lookup time of one clip's hashes, recall and memory.

Two kinds of archive are measured. Random hashes are what the index's worst case looks like to
a flat scan and what the pigeonhole arithmetic assumes. Camera frames are hashes of real
photographs (shipped with scikit-image) filmed as slow pans at the dense rate, so consecutive
frames are close and the hashes are far from uniform: that is what crowds some buckets.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image

from verify.similarity.hashes import PDQ_BITS, PDQ_BYTES, HashIndex
from verify.similarity.index import MultiHashIndex, range_search_flat

INDEX_KINDS = ("multihash", "flat")
# Real photographs in scikit-image's package (no download), in colour and in grey.
_PHOTOGRAPHS = ("astronaut.png", "coffee.png", "chelsea.png", "camera.png", "rocket.jpg", "motorcycle_left.png",
                "brick.png", "grass.png", "gravel.png", "moon.png", "coins.png", "retina.jpg")  # fmt: skip
_FRAME_SIZE = (160, 90)  # the dense copy of a 16:9 clip
_SHOT_FRAMES = 40  # 20 s at 2 frames a second
_TIMED_RUNS = 5


@dataclass(frozen=True)
class IndexRun:
    """One row of the benchmark: one index over one archive."""

    kind: str
    data: str
    size: int
    queries: int
    max_distance: int
    build_s: float
    build_cpu_s: float
    batch_ms: float  # wall clock, median of the timed runs
    batch_cpu_ms: float  # CPU time of the looking-up thread, median
    recall: float  # planted copies within the radius whose source was returned
    recall_at_radius: float | None  # copies exactly max_distance bits away (random data)
    planted: int
    false_hits: int  # hits beyond the radius, and far copies' sources returned
    bytes_per_hash: float  # what the index holds, by its arrays
    rss_bytes_per_hash: float  # how much the process grew, by its resident memory


def _rss_bytes() -> int:
    """Return the process's resident memory, once freed memory has gone back to the system."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc keeps freed heap memory otherwise
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def _flip(rng: np.random.Generator, hashes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    bits = np.unpackbits(hashes, axis=1)
    for row, count in enumerate(counts):
        bits[row, rng.choice(PDQ_BITS, size=int(count), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def _pdq(picture: Image.Image) -> np.ndarray:
    bits, _ = pdqhash.compute(np.asarray(picture))
    return np.packbits(np.asarray(bits, dtype=np.uint8))


def camera_frames(count: int, *, seed: int = 0) -> tuple[np.ndarray, list[Image.Image]]:
    """Return the hashes of count frames of slow pans over real photographs, and the frames.

    Needs scikit-image (requirements-dev.txt), which ships the photographs.
    """
    import skimage.data

    rng = np.random.default_rng(seed)
    folder = Path(skimage.data.__file__).parent
    photos = [Image.open(folder / name).convert("RGB") for name in _PHOTOGRAPHS]
    hashes: list[np.ndarray] = []
    frames: list[Image.Image] = []
    while len(frames) < count:
        photo = photos[int(rng.integers(len(photos)))]
        # A 16:9 window at 40-80 % of the photograph's width drifting up to a quarter of it.
        width = photo.width * rng.uniform(0.4, 0.8)
        height = min(width * 9 / 16, photo.height * 0.95)
        start = rng.uniform(0, 1, 2) * (photo.width - width, photo.height - height)
        end = np.clip(start + rng.uniform(-0.25, 0.25, 2) * width, 0, (photo.width - width, photo.height - height))
        for step in range(min(_SHOT_FRAMES, count - len(frames))):
            x, y = start + (end - start) * step / _SHOT_FRAMES
            window = photo.crop((round(x), round(y), round(x + width), round(y + height)))
            frame = window.resize(_FRAME_SIZE, Image.Resampling.BILINEAR)
            frames.append(frame)
            hashes.append(_pdq(frame))
    return np.array(hashes, dtype=np.uint8).reshape(-1, PDQ_BYTES), frames


def reposted(frame: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Return a frame as a repost shows it: rescaled, brighter or darker, recompressed, shifted a pixel or two."""
    scale = rng.uniform(0.5, 1.0)
    small = frame.resize((max(16, round(frame.width * scale)), max(9, round(frame.height * scale))))
    shifted = small.transform(small.size, Image.Transform.AFFINE, (1, 0, rng.integers(-2, 3), 0, 1, 0))
    pixels = np.clip(
        np.asarray(shifted, dtype=np.float32) * rng.uniform(0.8, 1.2) + rng.normal(0, 3, (1, 1, 3)), 0, 255
    )
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", quality=int(rng.integers(40, 80)))
    return Image.open(buffer).convert("RGB").resize(_FRAME_SIZE)


def index_benchmark(
    *, kind: str, size: int, queries: int, max_distance: int, frames: int = 0, threads: int = 1, seed: int = 0
) -> IndexRun:
    """Build an index over size hashes, plant near copies and time one clip's batch of lookups.

    With frames, that many stored hashes are camera frames and the planted copies are their
    reposts (only those that stay within the radius count); the rest of the archive is random.
    Without, copies are stored hashes with 0..max_distance random bits flipped, plus as many
    with exactly max_distance. Copies flipped max_distance + 16 bits must not find their source.
    """
    rng = np.random.default_rng(seed)
    stored = rng.integers(0, 256, size=(size, PDQ_BYTES), dtype=np.uint8)
    planted = max(queries, 2000) if kind == "multihash" else queries
    if frames:
        real, pictures = camera_frames(min(frames, size), seed=seed)
        stored[: len(real)] = real
        sources = rng.choice(len(real), size=min(planted, len(real)), replace=False)
        near = np.array([_pdq(reposted(pictures[s], rng)) for s in sources], dtype=np.uint8)
        distances = np.bitwise_count(near ^ real[sources]).sum(axis=1)
        sources, near = sources[distances <= max_distance], near[distances <= max_distance]
        edge = None
    else:
        sources = rng.choice(size, size=planted, replace=False)
        near = _flip(rng, stored[sources], rng.integers(0, max_distance + 1, size=planted))
        edge = _flip(rng, stored[sources], np.full(planted, max_distance))
    far = _flip(rng, stored[sources[:queries]], np.full(min(queries, len(sources)), min(max_distance + 16, PDQ_BITS)))
    ids = np.arange(size, dtype=np.int64) + (1 << 40)  # ids as large as the dense index's

    rss_before = _rss_bytes()
    index: MultiHashIndex | HashIndex = (
        MultiHashIndex(threads=threads) if kind == "multihash" else HashIndex(threads=threads)
    )
    started, cpu_started = time.perf_counter(), time.thread_time()
    index.add(ids, stored)
    index.search(stored[:1], max_distance=max_distance)  # the multi-hash tables are built on first use
    build_s, build_cpu_s = time.perf_counter() - started, time.thread_time() - cpu_started
    rss_bytes = _rss_bytes() - rss_before
    index_bytes = index.nbytes if isinstance(index, MultiHashIndex) else size * (PDQ_BYTES + 8)

    batch = np.resize(near, (queries, PDQ_BYTES))  # one clip's hashes, in one call
    walls, cpus = [], []
    for _ in range(_TIMED_RUNS if kind == "multihash" else 1):
        started, cpu_started = time.perf_counter(), time.thread_time()
        index.search(batch, max_distance=max_distance)
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.thread_time() - cpu_started) * 1000)

    results = index.search(near, max_distance=max_distance)
    found = sum(int(ids[s]) in {h for h, _ in hits} for s, hits in zip(sources, results, strict=True))
    beyond = sum(d > max_distance for hits in results for _, d in hits)
    far_results = index.search(far, max_distance=max_distance)
    false_hits = beyond + sum(
        int(ids[s]) in {h for h, _ in hits} for s, hits in zip(sources, far_results, strict=False)
    )
    recall_at_radius = None
    if edge is not None:
        edge_results = index.search(edge, max_distance=max_distance)
        edge_found = sum(int(ids[s]) in {h for h, _ in hits} for s, hits in zip(sources, edge_results, strict=True))
        recall_at_radius = edge_found / len(sources)
    if frames:
        # Every stored camera frame within the radius of a copy must be found, not only its source.
        exact_q, exact_rows, _ = range_search_flat(near, stored[: min(frames, size)], max_distance)
        expected = {(int(q), int(ids[r])) for q, r in zip(exact_q, exact_rows, strict=True)}
        got = {(q, h) for q, hits in enumerate(results) for h, _ in hits if h < ids[0] + min(frames, size)}
        recall = len(expected & got) / max(1, len(expected))
    else:
        recall = found / max(1, len(sources))
    return IndexRun(
        kind=kind,
        data="camera frames" if frames else "random",
        size=size,
        queries=queries,
        max_distance=max_distance,
        build_s=build_s,
        build_cpu_s=build_cpu_s,
        batch_ms=statistics.median(walls),
        batch_cpu_ms=statistics.median(cpus),
        recall=recall,
        recall_at_radius=recall_at_radius,
        planted=len(sources),
        false_hits=false_hits,
        bytes_per_hash=index_bytes / size,
        rss_bytes_per_hash=rss_bytes / size,
    )
