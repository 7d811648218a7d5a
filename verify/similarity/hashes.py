"""PDQ hashes of frames and an exact Hamming-radius index over them (no database here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pdqhash
from PIL import Image

PDQ_BITS = 256
PDQ_BYTES = PDQ_BITS // 8
# PDQ looks at a 64x64 luminance image; hashing a frame scaled to 512 px gives the same answer
# at a twentieth of the cost of a full 1080p frame.
_PDQ_INPUT_PX = 512


# --- hashes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FramePdq:
    """The PDQ hash of one frame and of its mirror image, hex, with PDQ's quality (0-100)."""

    pdq: str
    pdq_mirrored: str
    quality: int


def _packed_hex(bits: np.ndarray) -> str:
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def image_pdq(path: Path) -> FramePdq:
    """Return the PDQ hash of an image file and of its mirror image, with its quality."""
    return pixels_pdq(pdq_input(path))


def pdq_input(path: Path) -> Image.Image:
    """Return an image file as RGB, scaled to fit 512 px: what PDQ is computed on."""
    with Image.open(path) as image:
        # JPEG decodes straight to a half, quarter or eighth of its size: ask for the smallest
        # one that still covers the thumbnail (asking for a 512x512 square would make a 16:9
        # frame decode at full size, as no reduction keeps its height at 512).
        scale = _PDQ_INPUT_PX / max(image.size)
        image.draft("RGB", (max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        rgb = image.convert("RGB")
    rgb.thumbnail((_PDQ_INPUT_PX, _PDQ_INPUT_PX))
    return rgb


def pixels_pdq(rgb: Image.Image) -> FramePdq:
    """Return the PDQ hash of an RGB image and of its mirror image, with its quality."""
    pixels = np.asarray(rgb)
    bits, quality = pdqhash.compute(pixels)
    mirrored_bits, _ = pdqhash.compute(np.ascontiguousarray(pixels[:, ::-1]))
    return FramePdq(pdq=_packed_hex(bits), pdq_mirrored=_packed_hex(mirrored_bits), quality=int(quality))


def hamming_hex(a: str, b: str) -> int:
    """Return the number of bits in which two hex-encoded hashes differ."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def hashes_array(hex_hashes: Iterable[str]) -> np.ndarray:
    """Return hex PDQ hashes as an (n, 32) uint8 array, the layout the index takes."""
    joined = b"".join(bytes.fromhex(h) for h in hex_hashes)
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, PDQ_BYTES)


# --- index ----------------------------------------------------------------------------------


class HashIndex:
    """An exact Hamming-radius index over 256-bit hashes with database ids (faiss, flat scan).

    The keyframe index: a flat scan is exact at the keyframe radius (64 bits), where multi-index
    hashing would read most of its buckets. Over a million hashes it answers a keyframe in a few
    milliseconds. The dense frames, ten times as many, use ``index.MultiHashIndex`` at 31 bits.
    """

    def __init__(self, *, threads: int = 1) -> None:
        faiss.omp_set_num_threads(threads)
        self._index = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(PDQ_BITS))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: Sequence[int] | np.ndarray, hashes: np.ndarray) -> None:
        """Add hashes (an (n, 32) uint8 array) under their ids."""
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(hashes), np.asarray(ids, dtype=np.int64))

    def search(self, hashes: np.ndarray, *, max_distance: int) -> list[list[tuple[int, int]]]:
        """Return, for each query hash, the (id, distance) of every hash within max_distance."""
        if not len(hashes) or not len(self):
            return [[] for _ in range(len(hashes))]
        # faiss keeps distances strictly below the radius.
        limits, distances, ids = self._index.range_search(np.ascontiguousarray(hashes), max_distance + 1)
        hits = []
        for i in range(len(hashes)):
            start, end = limits[i], limits[i + 1]
            hits.append(list(zip(ids[start:end].tolist(), distances[start:end].astype(int).tolist(), strict=True)))
        return hits
