"""The dense-frame index: the same hits as a flat scan within the radius, at any size, and its benchmark."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import call_command

from verify.models import FrameHashes, MediaItem
from verify.similarity import dense_matching
from verify.similarity import index as index_module
from verify.similarity.dense import FRAME_DTYPE, DenseFrames, frames_pack
from verify.similarity.hashes import HashIndex
from verify.similarity.index import MultiHashIndex

# Ids as large as the dense index's (media item id << 24 | frame).
BASE_ID = 12_345 << 24


def _archive(size: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, 32), dtype=np.uint8)


def _copies(stored: np.ndarray, rows: np.ndarray, max_flips: int, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bits = np.unpackbits(stored[rows], axis=1)
    for row in range(len(rows)):
        bits[row, rng.choice(256, size=int(rng.integers(0, max_flips + 1)), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def _flat_hits(stored: np.ndarray, queries: np.ndarray, max_distance: int) -> list[set[tuple[int, int]]]:
    flat = HashIndex()
    flat.add(np.arange(len(stored)) + BASE_ID, stored)
    return [set(hits) for hits in flat.search(queries, max_distance=max_distance)]


def test_multihash_index_answers_like_a_flat_scan_with_tables_and_a_tail():
    # given: an archive large enough for tables; then more rows than the tail holds, merged into
    # the tables by the next search; then a few more, left in the tail
    stored = _archive(index_module._TABLES_MIN + 12_000)
    index = MultiHashIndex()
    built = index_module._TABLES_MIN + 1_000
    merged = built + 800 * (index_module._TAIL_MAX // 800 + 1)
    index.add(np.arange(built) + BASE_ID, stored[:built])
    index.search(stored[:1], max_distance=31)
    for start in range(built, len(stored), 800):  # one analysed clip at a time
        stop = min(start + 800, len(stored))
        index.add(np.arange(start, stop) + BASE_ID, stored[start:stop])
        if stop == merged:
            index.search(stored[:1], max_distance=31)
    assert index._indexed == merged
    # when: copies of stored hashes, up to 17 bits changed (a substring of every table keeps at
    # most two of them, so the tables cannot miss one), and copies of hashes in the tail
    rows = np.random.default_rng(3).choice(len(stored), size=300, replace=False)
    queries = _copies(stored, rows, max_flips=17)
    found = [set(hits) for hits in index.search(queries, max_distance=17)]
    # then: the same hits as a flat scan, the tables were used, and each copy finds its source
    assert found == _flat_hits(stored, queries, 17)
    assert all(any(hit_id == BASE_ID + row for hit_id, _ in hits) for row, hits in zip(rows, found, strict=True))


def test_multihash_index_finds_nearly_every_copy_at_31_bits_and_nothing_beyond():
    stored = _archive(index_module._TABLES_MIN + 1)
    index = MultiHashIndex()
    index.add(np.arange(len(stored)) + BASE_ID, stored)
    rows = np.random.default_rng(4).choice(len(stored), size=500, replace=False)
    near = _copies(stored, rows, max_flips=31)
    far = _copies(stored, rows, max_flips=0)
    bits = np.unpackbits(far, axis=1)
    bits[:, :47] ^= 1  # 47 bits away
    far = np.packbits(bits, axis=1)

    near_hits = index.search(near, max_distance=31)
    far_hits = index.search(far, max_distance=31)

    found = sum(any(h == BASE_ID + r for h, _ in hits) for r, hits in zip(rows, near_hits, strict=True))
    assert found >= 0.99 * len(rows)
    assert all(d <= 31 for hits in near_hits for _, d in hits)
    assert all(not hits for hits in far_hits)


def test_multihash_index_small_or_wide_searches_are_flat_scans():
    # given: a small archive (no tables) and a search wider than the tables answer
    stored = _archive(3_000)
    index = MultiHashIndex()
    index.add(np.arange(len(stored)) + BASE_ID, stored)
    rows = np.arange(0, 3_000, 30)
    queries = _copies(stored, rows, max_flips=64)
    # when
    small = [set(hits) for hits in index.search(queries, max_distance=31)]
    wide = [set(hits) for hits in index.search(queries, max_distance=64)]
    # then: exact, and nothing was spent on tables
    assert small == _flat_hits(stored, queries, 31)
    assert wide == _flat_hits(stored, queries, 64)
    assert index.nbytes < 3_000 * 40
    assert MultiHashIndex().search(queries[:2], max_distance=31) == [[], []]


def _stored_item(title: str, hashes: np.ndarray) -> MediaItem:
    """Store an item whose dense frames (2 a second, full quality) have these hashes."""
    from tests.conftest import make_user
    from workflows.models import Case

    user = make_user(f"u-{title}")
    case = Case.objects.create(title=title, claim="c", created_by=user)
    item = MediaItem.objects.create(case=case, original="x", size_bytes=1, sha256=title * 8, uploaded_by=user)
    FrameHashes.objects.create(
        media_item=item, rate_hz=2.0, frame_count=len(hashes), frames=frames_pack(_frames(hashes)), bars=[0, 0, 0, 0]
    )
    return item


def _frames(hashes: np.ndarray) -> np.ndarray:
    frames = np.zeros(len(hashes), dtype=FRAME_DTYPE)
    frames["time_ms"], frames["quality"], frames["pdq"] = np.arange(len(hashes)) * 500, 100, hashes
    return frames


@pytest.mark.django_db
def test_dense_match_keeps_its_hits_up_to_64_bits_when_the_index_answers_31(monkeypatch):
    # given: an archive large enough for the index's tables, and a clip of twelve pictures in it
    monkeypatch.setattr(dense_matching, "_dense_indexes", {})
    _stored_item("filler", _archive(index_module._TABLES_MIN + 1_000, seed=7))
    clip = _archive(12, seed=8)
    archived = _stored_item("archived", clip)
    # when: a copy comes in whose frames are 40-60 bits from the clip's but one, 10 bits away
    rng = np.random.default_rng(9)
    flips = np.r_[10, rng.integers(40, 61, size=11)]
    copy = _copies(clip, np.arange(12), max_flips=0)
    bits = np.unpackbits(copy, axis=1)
    for row, count in enumerate(flips):
        bits[row, rng.choice(256, size=int(count), replace=False)] ^= 1
    copy = np.packbits(bits, axis=1)
    dense = DenseFrames(frames=_frames(copy), rate_hz=2.0, bars=(0, 0, 0, 0), dihedral=copy[:, np.newaxis, :])
    incoming = _stored_item("copy", copy)
    found = dense_matching.dense_matches_find(media_item=incoming, dense=dense, is_still=False)
    # then: the index was built with tables, and the match has all twelve pairs, as a flat scan
    # at 64 bits would give it
    assert dense_matching.dense_index()._index._indexed > 0
    assert [(m.other_id, len(m.frame_pairs)) for m in found] == [(archived.pk, 12)]
    assert sorted(found[0].distances) == sorted(flips.tolist())
    # and without the close picture there is no match, as before
    far = DenseFrames(frames=_frames(copy[1:]), rate_hz=2.0, bars=(0, 0, 0, 0), dihedral=copy[1:, np.newaxis, :])
    assert dense_matching.dense_matches_find(media_item=incoming, dense=far, is_still=False) == []


@pytest.mark.slow
def test_similarity_benchmark_prints_lookup_time_recall_and_memory(capsys, settings):
    call_command("similarity_benchmark", sizes="40000", queries=120, frames=60, index="multihash,flat")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "| index | data | hashes | queries | radius | build s | build cpu s | clip ms | clip cpu ms | recall "
        "| recall at radius | false hits | bytes/hash | RSS bytes/hash |"
    )
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [row[:5] for row in rows] == [
        [kind, data, "40,000", "120", f"≤{settings.VERIFY_PHOTO_MAX_DISTANCE}"]
        for kind in ("multihash", "flat")
        for data in ("random", "camera frames")
    ]
    for row in rows:
        assert float(row[9].split("%")[0]) >= 99, row  # recall
        assert row[11] == "0", row  # false hits
    # bytes per hash: the hash, a 2-byte id offset, a row number per table and the tables' bucket
    # offsets, which at 40,000 hashes outweigh the rest; the flat index: the hash and an 8-byte id
    tables, buckets = index_module._TABLES, 1 << index_module._KEY_BITS
    assert float(rows[0][12]) == pytest.approx(32 + 2 + 4 * tables + tables * (buckets + 1) * 4 / 40_000, abs=0.1)
    assert float(rows[2][12]) == 40.0
