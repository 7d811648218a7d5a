"""A Hamming-radius index for millions of 256-bit hashes: multi-index hashing on a few substrings.

A flat scan reads every stored hash for every query: at 10 million dense frame hashes that is
about 18 ms of CPU a query, and a two-minute clip asks hundreds. Multi-index hashing reads a
few buckets instead. Six substrings of each hash (``_KEY_BITS`` bits each: two bytes and five
bits of a third, from a fixed shuffle of the 32 bytes, so that no table sees only PDQ's
low-frequency coefficients) each key a table that maps the substring's value to the rows that
have it. A query reads, in every table, the buckets of its substring and of every value within
``_FLIPS`` bits of it, and each row found is checked against the full hash, so nothing farther
than the radius is ever returned. A hash within 31 bits of the query is missed only when every
one of its six substrings differs in three bits or more: never below 18 bits, about 1 in 300
at exactly 31 bits of random flips (``manage.py similarity_benchmark`` measures it).

Six tables, not the twelve or sixteen that would make the search exact at 31 bits, keep the
index under 64 bytes a hash at 10 million: the hash (32), a 2-byte id offset (ids added
together are close: one media item's frames), a 4-byte row number per table (24) and the
tables' bucket offsets (6 x 8 MB, 5 bytes a hash at 10 million). Exact would cost 94 to 100.

Rows added since the tables were last built sit in a tail that is scanned flat and is merged
into the tables (in one linear pass, no sort of the stored rows) when it grows past
``_TAIL_MAX``. Below ``_TABLES_MIN`` rows there are no tables at all: a flat scan of a small
archive is as fast and costs no memory. A search wider than ``MAX_DISTANCE`` is a flat scan.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from itertools import combinations

import faiss
import numpy as np

PDQ_BYTES = 32
# The widest radius the tables answer; a wider search scans every hash.
MAX_DISTANCE = 31
_TABLES = 6
_KEY_BITS = 21
_FLIPS = 2
_TABLES_MIN = 32_768
_TAIL_MAX = 8_192
# Queries checked together: bounds the candidate arrays to a few tens of megabytes.
_QUERY_CHUNK = 32
# Each table's key: two whole bytes and five bits of a third, from a fixed shuffle of the 32
# bytes (18 bytes, 126 of the 256 bits).
_BYTE_ORDER = np.random.default_rng(20_260_101).permutation(PDQ_BYTES)
_KEY_BYTES = [
    (int(_BYTE_ORDER[2 * t]), int(_BYTE_ORDER[2 * t + 1]), int(_BYTE_ORDER[2 * _TABLES + t])) for t in range(_TABLES)
]
_PROBE_MASKS = np.array(
    [sum(1 << b for b in bits) for n in range(_FLIPS + 1) for bits in combinations(range(_KEY_BITS), n)],
    dtype=np.uint32,
)


# (query row, stored row, distance) of every pair found, as three arrays.
_Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


def substring_keys(hashes: np.ndarray) -> np.ndarray:
    """Return the table keys of (n, 32) uint8 hashes as a (_TABLES, n) uint32 array."""
    columns = np.ascontiguousarray(hashes.T)
    keys = np.empty((_TABLES, len(hashes)), dtype=np.uint32)
    for table, (low, high, extra) in enumerate(_KEY_BYTES):
        key = keys[table]
        np.left_shift(columns[extra] & 31, 16, out=key, dtype=np.uint32)
        key |= columns[high].astype(np.uint32) << 8
        key |= columns[low]
    return keys


def range_search_flat(queries: np.ndarray, stored: np.ndarray, max_distance: int) -> _Pairs:
    """Return (query row, stored row, distance) arrays of every pair within max_distance (exact)."""
    if not len(queries) or not len(stored):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    queries, stored = np.ascontiguousarray(queries), np.ascontiguousarray(stored)
    result = faiss.RangeSearchResult(len(queries))
    # faiss keeps distances strictly below the radius.
    faiss.hamming_range_search(  # type: ignore[attr-defined]  # in faiss, not in its stubs
        faiss.swig_ptr(queries), faiss.swig_ptr(stored), len(queries), len(stored), max_distance + 1, PDQ_BYTES, result
    )
    limits = faiss.rev_swig_ptr(result.lims, len(queries) + 1).astype(np.int64)
    total = int(limits[-1])
    rows = faiss.rev_swig_ptr(result.labels, total).copy() if total else np.zeros(0, dtype=np.int64)
    distances = faiss.rev_swig_ptr(result.distances, total).copy() if total else np.zeros(0, dtype=np.int32)
    return np.repeat(np.arange(len(queries)), np.diff(limits)), rows, distances.astype(np.int64)


def _concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Return the positions start..start+length of every range, one after the other."""
    total = int(lengths.sum())
    shift = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return shift + np.arange(total, dtype=np.int64)


class MultiHashIndex:
    """A Hamming-radius index over 256-bit hashes with int64 ids; see the module docstring.

    Thread-safe: adding, merging the tail and searching hold one lock.
    """

    def __init__(self, *, threads: int = 1) -> None:
        faiss.omp_set_num_threads(threads)
        self._codes = np.zeros((0, PDQ_BYTES), dtype=np.uint8)
        # An id is the base of its segment plus a 2-byte offset: ids added together are close.
        self._id_offsets = np.zeros(0, dtype=np.uint16)
        # Segment i starts at row _segment_rows[i]; its ids are _segment_bases[i] + offset.
        self._segment_rows = np.zeros(0, dtype=np.int64)
        self._segment_bases = np.zeros(0, dtype=np.int64)
        self._segments = 0
        self._count = 0
        self._indexed = 0  # rows [0, _indexed) are in the tables
        self._offsets: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Return the bytes the index's hashes, ids and tables take (room reserved for more is never touched)."""
        tables = sum(o.nbytes for o in self._offsets) + sum(r.nbytes for r in self._rows)
        return self._count * (PDQ_BYTES + self._id_offsets.itemsize) + 16 * self._segments + tables

    def add(self, ids: Sequence[int] | np.ndarray, hashes: np.ndarray) -> None:
        """Add hashes (an (n, 32) uint8 array) under their ids."""
        id_array = np.asarray(ids, dtype=np.int64)
        if not len(id_array):
            return
        with self._lock:
            self._reserve(self._count + len(id_array))
            stop = self._count + len(id_array)
            self._codes[self._count : stop] = hashes
            self._segments_add(self._count, id_array)
            self._count = stop

    def search(self, hashes: np.ndarray, *, max_distance: int) -> list[list[tuple[int, int]]]:
        """Return, for each query hash, the (id, distance) of stored hashes within max_distance.

        Up to ``MAX_DISTANCE`` a hash is missed rarely (see the module docstring); beyond it
        the search is exact and reads every stored hash.
        """
        hits: list[list[tuple[int, int]]] = [[] for _ in range(len(hashes))]
        if not len(hashes) or not self._count:
            return hits
        queries = np.ascontiguousarray(hashes, dtype=np.uint8)
        with self._lock:
            if max_distance > MAX_DISTANCE:
                found = range_search_flat(queries, self._codes[: self._count], max_distance)
            else:
                if self._count >= _TABLES_MIN and self._count - self._indexed > _TAIL_MAX:
                    self._merge()
                found = self._search_tables(queries, max_distance)
            query_rows, rows, distances = found
            ids = self._ids(rows)
        for q, hit_id, distance in zip(query_rows.tolist(), ids.tolist(), distances.tolist(), strict=True):
            hits[q].append((hit_id, distance))
        return hits

    # --- storage ----------------------------------------------------------------------------

    def _reserve(self, rows: int) -> None:
        if rows <= len(self._codes):
            return
        capacity = max(rows, len(self._codes) + len(self._codes) // 4)
        codes = np.empty((capacity, PDQ_BYTES), dtype=np.uint8)
        codes[: self._count] = self._codes[: self._count]
        offsets = np.empty(capacity, dtype=np.uint16)
        offsets[: self._count] = self._id_offsets[: self._count]
        self._codes, self._id_offsets = codes, offsets

    def _segments_add(self, start: int, ids: np.ndarray) -> None:
        low, high = int(ids.min()), int(ids.max())
        if high - low >= 1 << 16:
            half = len(ids) // 2
            self._segments_add(start, ids[:half])
            self._segments_add(start + half, ids[half:])
            return
        base = int(self._segment_bases[self._segments - 1]) if self._segments else 0
        if not self._segments or base > low or high - base >= 1 << 16:
            if self._segments == len(self._segment_rows):
                grown = max(16, self._segments * 2)
                self._segment_rows = np.resize(self._segment_rows, grown)
                self._segment_bases = np.resize(self._segment_bases, grown)
            self._segment_rows[self._segments] = start
            self._segment_bases[self._segments] = base = low
            self._segments += 1
        self._id_offsets[start : start + len(ids)] = ids - base

    def _ids(self, rows: np.ndarray) -> np.ndarray:
        segment = np.searchsorted(self._segment_rows[: self._segments], rows, side="right") - 1
        return self._segment_bases[segment] + self._id_offsets[rows]

    # --- tables -----------------------------------------------------------------------------

    def _merge(self) -> None:
        """Put the tail's rows into the tables: one linear pass over each table, no sort of the stored rows."""
        start, stop = self._indexed, self._count
        keys = substring_keys(self._codes[start:stop])
        buckets = 1 << _KEY_BITS
        for table in range(_TABLES):
            table_keys = keys[table]
            built = table < len(self._offsets)
            old_offsets = self._offsets[table] if built else np.zeros(buckets + 1, dtype=np.uint32)
            old_rows = self._rows[table] if built else np.zeros(0, dtype=np.uint32)
            old_counts = np.diff(old_offsets)
            new_counts = np.bincount(table_keys, minlength=buckets)
            new_before = np.zeros(buckets + 1, dtype=np.int64)
            np.cumsum(new_counts, out=new_before[1:])
            offsets = (old_offsets + new_before).astype(np.uint32)
            rows = np.empty(stop, dtype=np.uint32)
            # An old row moves up by the number of new rows in lower buckets...
            rows[np.arange(start) + np.repeat(new_before[:-1], old_counts)] = old_rows
            # ...and a new row goes after its bucket's old rows, in row order.
            # (key, row) pairs sorted as one 64-bit number: the rows of a key in row order.
            pairs = table_keys.astype(np.uint64) << 32 | np.arange(stop - start, dtype=np.uint64)
            pairs.sort()
            sorted_keys = (pairs >> 32).astype(np.int64)
            order = (pairs & 0xFFFFFFFF).astype(np.int64)
            del pairs
            rank = np.arange(len(order)) - new_before[sorted_keys]
            rows[offsets[sorted_keys].astype(np.int64) + old_counts[sorted_keys] + rank] = start + order
            if built:
                self._offsets[table], self._rows[table] = offsets, rows
            else:
                self._offsets.append(offsets)
                self._rows.append(rows)
        self._indexed = stop

    def _search_tables(self, queries: np.ndarray, max_distance: int) -> _Pairs:
        tail_q, tail_rows, tail_d = range_search_flat(queries, self._codes[self._indexed : self._count], max_distance)
        parts = [(tail_q, tail_rows + self._indexed, tail_d)]
        if self._indexed:
            codes = self._codes[: self._indexed].view(np.uint64)
            query_words = queries.view(np.uint64)
            keys = substring_keys(queries)
            for first in range(0, len(queries), _QUERY_CHUNK):
                last = min(first + _QUERY_CHUNK, len(queries))
                parts.append(self._chunk_search(codes, query_words, keys, first, last, max_distance))
        query_rows = np.concatenate([p[0] for p in parts])
        rows = np.concatenate([p[1] for p in parts])
        distances = np.concatenate([p[2] for p in parts])
        return query_rows, rows, distances

    def _chunk_search(
        self, codes: np.ndarray, query_words: np.ndarray, keys: np.ndarray, first: int, last: int, max_distance: int
    ) -> _Pairs:
        candidates, owners = [], []
        for table in range(_TABLES):
            probes = (keys[table, first:last, np.newaxis] ^ _PROBE_MASKS).ravel()
            starts = self._offsets[table][probes].astype(np.int64)
            lengths = self._offsets[table][probes + 1].astype(np.int64) - starts
            candidates.append(self._rows[table][_concat_ranges(starts, lengths)])
            owners.append(np.repeat(np.arange(first, last).repeat(len(_PROBE_MASKS)), lengths))
        rows = np.concatenate(candidates)
        query_rows = np.concatenate(owners)
        counts = np.bitwise_count(np.take(codes, rows, axis=0) ^ np.take(query_words, query_rows, axis=0))
        distances = counts[:, 0].astype(np.int64) + counts[:, 1] + counts[:, 2] + counts[:, 3]
        near = distances <= max_distance
        # A hash close to the query is usually found in several tables: keep it once.
        pair = query_rows[near].astype(np.int64) << 32 | rows[near]
        _, first_seen = np.unique(pair, return_index=True)
        return query_rows[near][first_seen], rows[near][first_seen].astype(np.int64), distances[near][first_seen]
