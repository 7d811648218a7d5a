"""Text in frames: Tesseract reads each keyframe and keeps the words above a confidence floor.

Tesseract runs in-process through ``tesserocr``, one engine per worker process and language
set, on Debian's language packs (``VERIFY_TESSDATA_DIR``). A frame is read in grey at most
``_MAX_SIDE_PX`` on its longer side, in three steps, cheapest first:

1. an edge test on the half-size copy: a frame without one tile dense in edges (sky, walls,
   gradients, blur) holds no legible text and costs a few milliseconds;
2. Tesseract's layout analysis alone, without recognition, on the half-size copy: it finds the
   text lines. Texture (foliage, noise, cellular patterns) has thousands of blobs, and at half
   size that costs a quarter of what it costs at full size; no text line, no reading;
3. recognition in each text line's box, padded, on the full-size grey with Sauvola's local
   thresholds (light text on dark plates and dark text on light ones), under a time limit.

Words under the confidence floor, and "words" without two letters or digits, are dropped: a
frame without text yields no row, not noise.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from PIL import Image

from verify.models import Keyframe, KeyframeText, MediaItem

logger = logging.getLogger(__name__)

_MAX_SIDE_PX = 1280
_RECOGNIZE_TIMEOUT_MS = 4000  # per text line's region
# The edge test: a step of this many grey levels between neighbours is an edge, and a tile of
# the half-size copy with this fraction of edges may hold strokes of text.
_EDGE_STEP = 32
_TILE_PX = 16
_TILE_EDGE_FRACTION = 0.1
_LANGUAGE = re.compile(r"^[a-z]{3}(_[a-z]+)?$")
_lock = threading.Lock()


@dataclass(frozen=True)
class Word:
    """One word Tesseract read: its text, confidence (0-100) and box in frame pixels."""

    text: str
    confidence: float
    box: tuple[int, int, int, int]  # left, top, width, height
    line: int

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": round(self.confidence, 1), "box": list(self.box)}


def languages_setting(value: str | None = None) -> str:
    """Return the Tesseract languages to read with ("" when OCR is off)."""
    value = settings.VERIFY_OCR_LANGUAGES if value is None else value
    return "+".join(part.strip() for part in value.replace(",", "+").split("+") if part.strip())


@functools.cache
def _engine(languages: str) -> Any:
    import tesserocr

    api = tesserocr.PyTessBaseAPI(path=settings.VERIFY_TESSDATA_DIR, lang=languages, psm=tesserocr.PSM.AUTO)
    api.SetVariable("thresholding_method", "2")  # Sauvola: local thresholds
    return api


def languages_validate(value: str) -> None:
    """Refuse a language list that names a language this server has no Tesseract data for."""
    data = Path(settings.VERIFY_TESSDATA_DIR)
    parts = [part for part in languages_setting(value).split("+") if part]
    missing = [part for part in parts if not (_LANGUAGE.match(part) and (data / f"{part}.traineddata").is_file())]
    if missing:
        raise ValidationError(
            f"No Tesseract language data for {', '.join(missing)}; name languages like eng+ukr+rus+ara.",
            code="ocr_language_missing",
        )


def engine_version() -> str:
    """Return the Tesseract version doing the reading."""
    import tesserocr

    return f"tesseract {tesserocr.tesseract_version().split()[1]}"


def _logical_order(text: str) -> str:
    # Tesseract's word iterator gives right-to-left words (Arabic) in visual order.
    if sum(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text) > len(text) / 2:
        return text[::-1]
    return text


def _plausible(text: str) -> bool:
    return sum(ch.isalnum() for ch in text) >= 2


def _may_hold_text(half: Image.Image) -> bool:
    # Legible text has strokes: somewhere a tile dense in sharp grey-level steps.
    pixels = np.asarray(half, dtype=np.int16)
    steps = np.abs(np.diff(pixels, axis=1))[:-1, :] + np.abs(np.diff(pixels, axis=0))[:, :-1]
    edges = steps > _EDGE_STEP
    rows, cols = edges.shape[0] // _TILE_PX, edges.shape[1] // _TILE_PX
    if not rows or not cols:
        return bool(edges.mean() > _TILE_EDGE_FRACTION)
    tiles = edges[: rows * _TILE_PX, : cols * _TILE_PX].reshape(rows, _TILE_PX, cols, _TILE_PX).mean(axis=(1, 3))
    return bool((tiles > _TILE_EDGE_FRACTION).any())


def _text_line_boxes(api: Any, half: Image.Image) -> list[tuple[int, int, int, int]]:
    # Layout analysis only: no recognition, so texture costs its blobs and nothing more.
    import tesserocr

    api.SetImage(half)
    iterator = api.AnalyseLayout()
    boxes: list[tuple[int, int, int, int]] = []
    if iterator is None:
        return boxes
    level, kind = tesserocr.RIL.TEXTLINE, tesserocr.PT
    not_text = {kind.FLOWING_IMAGE, kind.HEADING_IMAGE, kind.PULLOUT_IMAGE, kind.HORZ_LINE, kind.VERT_LINE, kind.NOISE}
    while True:
        box = iterator.BoundingBox(level)
        if box is not None and iterator.BlockType() not in not_text:
            boxes.append(box)
        if not iterator.Next(level):
            return boxes


def _reading_regions(
    boxes: list[tuple[int, int, int, int]], *, factor: int, size: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """Return the text lines' boxes scaled by factor and padded, overlapping ones merged, top to bottom."""
    regions: list[list[int]] = []
    for left, top, right, bottom in boxes:
        height = (bottom - top) * factor
        pad_x, pad_y = max(8, height), max(8, height // 2)  # room for a clipped first or last letter
        region = [max(0, left * factor - pad_x), max(0, top * factor - pad_y),
                  min(size[0], right * factor + pad_x), min(size[1], bottom * factor + pad_y)]  # fmt: skip
        overlapping = [
            r for r in regions if r[0] < region[2] and region[0] < r[2] and r[1] < region[3] and region[1] < r[3]
        ]
        for other in overlapping:
            regions.remove(other)
            region = [min(region[0], other[0]), min(region[1], other[1]), max(region[2], other[2]),
                      max(region[3], other[3])]  # fmt: skip
        regions.append(region)
    return sorted(((r[0], r[1], r[2] - r[0], r[3] - r[1]) for r in regions), key=lambda r: (r[1], r[0]))


def image_words(image: Image.Image, *, languages: str, confidence_floor: float) -> list[Word]:
    """Return the words read in an image, above the confidence floor, in reading order."""
    import tesserocr

    grey = image.convert("L")
    scale = min(1.0, _MAX_SIDE_PX / max(grey.size))
    if scale < 1.0:
        grey = grey.resize((round(grey.width * scale), round(grey.height * scale)), Image.Resampling.LANCZOS)
    half = grey.reduce(2)
    if not _may_hold_text(half):
        return []
    words: list[Word] = []
    level, line_level = tesserocr.RIL.WORD, tesserocr.RIL.TEXTLINE
    line = 0
    with _lock:  # one engine per language set; Tesseract's API object is not thread-safe
        api = _engine(languages)
        regions = _reading_regions(_text_line_boxes(api, half), factor=2, size=grey.size)
        if not regions:
            return words
        # Through half size and back: strokes of text survive, one-pixel noise and tiny cells do not.
        api.SetImage(half.resize(grey.size, Image.Resampling.BILINEAR))
        for region in regions:
            api.SetRectangle(*region)
            api.Recognize(_RECOGNIZE_TIMEOUT_MS)
            iterator = api.GetIterator()
            if iterator is None:
                continue
            for word in tesserocr.iterate_level(iterator, level):
                if word.IsAtBeginningOf(line_level):
                    line += 1
                try:
                    text = _logical_order((word.GetUTF8Text(level) or "").strip())
                except RuntimeError:  # an empty region
                    continue
                confidence = word.Confidence(level)
                box = word.BoundingBox(level)
                if not text or confidence < confidence_floor or not _plausible(text) or box is None:
                    continue
                left, top, right, bottom = (round(v / scale) for v in box)
                words.append(
                    Word(text=text, confidence=confidence, box=(left, top, right - left, bottom - top), line=line)
                )
    return words


def words_text(words: list[Word]) -> str:
    """Return the words as text, one line per text line."""
    lines: dict[int, list[str]] = {}
    for word in words:
        lines.setdefault(word.line, []).append(word.text)
    return "\n".join(" ".join(parts) for parts in lines.values())


def keyframe_texts_save(item: MediaItem, frames: list[tuple[Keyframe, Path]], *, languages: str | None = None) -> int:
    """Read the text in each keyframe and replace the item's keyframe text rows; return how many.

    Safe to run again: the rows are replaced wholesale. Does nothing when OCR is off.
    """
    languages = languages_setting(languages)
    if not languages:
        return 0
    floor = settings.VERIFY_OCR_CONFIDENCE_FLOOR
    version = engine_version()
    rows = []
    for keyframe, path in frames:
        with Image.open(path) as image:
            words = image_words(image, languages=languages, confidence_floor=floor)
        if words:
            rows.append(
                KeyframeText(
                    keyframe=keyframe, media_item=item, text=words_text(words),
                    words=[word.as_json() for word in words], languages=languages, engine=version,
                )
            )  # fmt: skip
    with transaction.atomic():
        KeyframeText.objects.filter(media_item=item).delete()
        KeyframeText.objects.bulk_create(rows)
    return len(rows)


def media_item_ocr(item: MediaItem, frame_paths: dict[float, Path]) -> int:
    """Read the text in the item's saved keyframes from their local files (timestamp -> path).

    The languages are the case's (read through the foreign key by name: verify does not import
    workflows), or the default ``VERIFY_OCR_LANGUAGES`` when the case names none.
    """
    case_languages = MediaItem.objects.filter(pk=item.pk).values_list("case__ocr_languages", flat=True).first()
    keyframes = list(Keyframe.objects.filter(media_item=item).order_by("timestamp_s"))
    frames = [(k, frame_paths[k.timestamp_s]) for k in keyframes if k.timestamp_s in frame_paths]
    return keyframe_texts_save(item, frames, languages=case_languages or None)
