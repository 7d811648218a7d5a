"""Hash the frames ffmpeg writes while it is still decoding, so hashing adds little wall time.

The keyframe pass writes numbered JPEGs; every kept frame then needs its pHash (near-duplicate
dropping), its PDQ hashes (recycled footage) and a tile for the contact sheet. ffmpeg leaves a
core partly idle while it decodes, so a thread digests each frame as soon as it is complete
instead of after ffmpeg exits. Pillow decodes and scales without holding the GIL, and the
worker's own thread only reads ffmpeg's progress meanwhile.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import imagehash
from PIL import Image

from verify.frames import contact_sheet_tile, frame_hash
from verify.similarity.hashes import FramePdq, pdq_input, pixels_pdq

_POLL_S = 0.05


@dataclass(frozen=True)
class FrameDigest:
    """What the analysis needs of one frame image: its pHash, size, PDQ hashes and contact-sheet tile."""

    phash: imagehash.ImageHash
    width: int
    height: int
    pdq: FramePdq
    # Kept as JPEG: a long clip writes hundreds of frames, and raw tiles would hold ~0.2-0.6 MB each.
    tile_jpeg: bytes

    def tile(self) -> Image.Image:
        """Return the contact-sheet tile."""
        return Image.open(io.BytesIO(self.tile_jpeg))


def frame_digest(path: Path) -> FrameDigest:
    """Return the digest of an image file."""
    phash, width, height = frame_hash(path)
    scaled = pdq_input(path)
    tile = io.BytesIO()
    contact_sheet_tile(scaled).save(tile, "JPEG", quality=95)
    return FrameDigest(phash=phash, width=width, height=height, pdq=pixels_pdq(scaled), tile_jpeg=tile.getvalue())


class FrameDigester:
    """Digest the numbered frames (``frame_*.jpg``) written into a folder, in a thread, as they complete.

    Use it as a context manager around the ffmpeg run. ffmpeg's image2 muxer closes one file
    before it opens the next, so a frame is complete once a later one exists; the newest is
    left alone until the block ends. ``digest`` answers from the thread's work, or hashes the
    frame there and then (the last frames, or one the thread could not read).
    """

    def __init__(self, directory: Path):
        self._directory = directory
        self._digests: dict[Path, FrameDigest] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-digester", daemon=True)

    def __enter__(self) -> FrameDigester:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(_POLL_S):
            complete = sorted(self._directory.glob("frame_*.jpg"))[:-1]
            for path in complete:
                if self._stopping.is_set():
                    return
                with self._lock:
                    if path in self._digests:
                        continue
                try:
                    digest = frame_digest(path)
                except Exception:  # noqa: S112 - digest() tries again in the caller, which reports it
                    continue
                with self._lock:
                    self._digests[path] = digest

    def digested(self) -> set[Path]:
        """Return the frames digested so far."""
        with self._lock:
            return set(self._digests)

    def digest(self, path: Path) -> FrameDigest:
        """Return the digest of a frame the run wrote."""
        with self._lock:
            found = self._digests.get(path)
        if found is None:
            found = frame_digest(path)
            with self._lock:
                self._digests[path] = found
        return found
