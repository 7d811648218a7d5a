"""Text in frames: Tesseract reads each keyframe and keeps the words above a confidence floor.

Tesseract runs in-process through ``tesserocr``, one engine per worker process and language
set, on Debian's language packs (``VERIFY_TESSDATA_DIR``). A frame is read in grey at most
``_MAX_SIDE_PX`` on its longer side, with Sauvola's local thresholding, which keeps light text
on dark plates and dark text on light ones. Frames that are texture rather than text (foliage,
noise, cellular patterns) have thousands of small blobs; Tesseract can spend tens of seconds on
one of them, so a frame whose reduced copy has more than ``_MAX_BLOBS`` is not read at all.
Words under the confidence floor, and "words" without two letters or digits, are dropped: a
frame without text yields no row, not noise.
"""

from __future__ import annotations

import functools
import logging
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from PIL import Image

from verify.models import Keyframe, KeyframeText, MediaItem

logger = logging.getLogger(__name__)

_MAX_SIDE_PX = 1280
_MAX_BLOBS = 600  # in the half-size copy; measured: text frames 10-80, cellular patterns 2,700+
_RECOGNIZE_TIMEOUT_MS = 4000
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


def image_words(image: Image.Image, *, languages: str, confidence_floor: float) -> list[Word]:
    """Return the words read in an image, above the confidence floor, in reading order."""
    import tesserocr

    grey = image.convert("L")
    scale = min(1.0, _MAX_SIDE_PX / max(grey.size))
    if scale < 1.0:
        grey = grey.resize((round(grey.width * scale), round(grey.height * scale)), Image.Resampling.LANCZOS)
    with _lock:  # one engine per language set; Tesseract's API object is not thread-safe
        api = _engine(languages)
        # Through half size and back: strokes of text survive, one-pixel noise and tiny cells do not.
        api.SetImage(grey.reduce(2).resize(grey.size, Image.Resampling.BILINEAR))
        api.Recognize(_RECOGNIZE_TIMEOUT_MS)
        iterator = api.GetIterator()
        words: list[Word] = []
        if iterator is None:
            return words
        level, line_level = tesserocr.RIL.WORD, tesserocr.RIL.TEXTLINE
        line = 0
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
            words.append(Word(text=text, confidence=confidence, box=(left, top, right - left, bottom - top), line=line))
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
    """Read the text in the item's saved keyframes from their local files (timestamp -> path)."""
    keyframes = list(Keyframe.objects.filter(media_item=item).order_by("timestamp_s"))
    frames = [(k, frame_paths[k.timestamp_s]) for k in keyframes if k.timestamp_s in frame_paths]
    return keyframe_texts_save(item, frames)
