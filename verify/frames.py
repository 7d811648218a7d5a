"""Keyframe choice, perceptual hashes and contact sheets, from frames ffmpeg has written."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from verify.ffmpeg import SelectedFrame

REASON_IFRAME = "iframe"
REASON_SCENE = "scene"
REASON_INTERVAL = "interval"
# Float slack when comparing PTS-derived times printed by ffmpeg.
_TIME_EPSILON_S = 1e-6


@dataclass(frozen=True)
class JudgedFrame:
    """A frame kept from the keyframe pass, with the reasons it qualified."""

    frame: SelectedFrame
    reasons: tuple[str, ...]
    scene_score: float | None


@dataclass(frozen=True)
class CandidateFrame:
    """A kept frame with its perceptual hash and size, ready for near-duplicate dropping."""

    frame: SelectedFrame
    reasons: tuple[str, ...]
    scene_score: float | None
    phash: imagehash.ImageHash
    width: int
    height: int


def scene_cuts(
    scores: Sequence[tuple[float, float]], *, threshold: float, min_shot_s: float
) -> list[tuple[float, float]]:
    """Return (time, score) of each hard cut: a score above threshold that starts a new shot.

    A shot shorter than ``min_shot_s`` is not believed: the first frames after a cut often
    score high again while the new picture settles, and that is the same cut.
    """
    cuts: list[tuple[float, float]] = []
    for timestamp, score in scores:
        if score > threshold and (not cuts or timestamp - cuts[-1][0] >= min_shot_s):
            cuts.append((timestamp, score))
    return cuts


def frames_judge(
    frames: Sequence[SelectedFrame],
    *,
    cuts: Sequence[tuple[float, float]],
    scores: Sequence[tuple[float, float]],
    interval_s: float,
    cut_window_s: float = 0.5,
) -> list[JudgedFrame]:
    """Return the frames worth keeping and why: I-frames, the first frame after each cut, and
    interval samples; a scene candidate that no cut confirms is dropped.
    """
    score_at = {round(t, 3): score for t, score in scores}
    after_cut: dict[int, float] = {}
    for cut_s, cut_score in cuts:
        index = next(
            (i for i, f in enumerate(frames) if cut_s - _TIME_EPSILON_S <= f.timestamp_s <= cut_s + cut_window_s),
            None,
        )
        if index is not None:
            after_cut.setdefault(index, cut_score)
    judged: list[JudgedFrame] = []
    last_kept_s: float | None = None
    for index, frame in enumerate(frames):
        reasons = []
        if frame.pict_type == "I":
            reasons.append(REASON_IFRAME)
        if index in after_cut:
            reasons.append(REASON_SCENE)
        if last_kept_s is None or frame.timestamp_s - last_kept_s >= interval_s - _TIME_EPSILON_S:
            reasons.append(REASON_INTERVAL)
        if not reasons:
            continue
        score = after_cut.get(index, score_at.get(round(frame.timestamp_s, 3)))
        judged.append(JudgedFrame(frame=frame, reasons=tuple(reasons), scene_score=score))
        last_kept_s = frame.timestamp_s
    return judged


# pHash keeps the 8x8 lowest frequencies of the DCT-II of a 32x32 grey copy. imagehash.phash
# takes that DCT with scipy.fftpack, whose import adds ~28 MB to every worker process; two
# products with the first eight rows of the (unnormalised, as scipy's) DCT-II matrix give the
# same coefficients. Where a coefficient is zero (flat frames, title cards, gradients) scipy
# returns exactly 0 and the products a rounding residue near 1e-10, which would decide a bit
# against the median; rounding to 1e-6, far below any coefficient integer pixels can make,
# gives scipy's zeros back.
_PHASH_BITS_SIDE = 8
_PHASH_IMAGE_SIDE = 32
_PHASH_DECIMALS = 6
_PHASH_DCT_ROWS = 2 * np.cos(
    np.pi * np.outer(np.arange(_PHASH_BITS_SIDE), 2 * np.arange(_PHASH_IMAGE_SIDE) + 1) / (2 * _PHASH_IMAGE_SIDE)
)


def phash(image: Image.Image) -> imagehash.ImageHash:
    """Return the 64-bit DCT perceptual hash of an image, bit for bit ``imagehash.phash(image)``."""
    side = _PHASH_IMAGE_SIDE
    pixels = np.asarray(image.convert("L").resize((side, side), Image.Resampling.LANCZOS), dtype=np.float64)
    low_frequencies = np.round(_PHASH_DCT_ROWS @ pixels @ _PHASH_DCT_ROWS.T, _PHASH_DECIMALS)
    return imagehash.ImageHash(low_frequencies > np.median(low_frequencies))


def frame_hash(path: Path) -> tuple[imagehash.ImageHash, int, int]:
    """Return the 64-bit DCT perceptual hash of an image file, with its width and height."""
    with Image.open(path) as image:
        width, height = image.size
        # JPEG can decode straight to a reduced size; pHash only looks at 32x32 anyway.
        image.draft("L", (128, 128))
        return phash(image), width, height


def keyframes_choose(
    candidates: Sequence[CandidateFrame], *, max_count: int, near_duplicate_bits: int
) -> tuple[list[CandidateFrame], bool]:
    """Return the keyframes to keep, in time order, and whether the cap cut any off.

    A frame whose hash is within ``near_duplicate_bits`` of the last kept frame adds nothing
    and is dropped, unless it is the first frame after a cut. When more remain than
    ``max_count``, scene changes are kept first, then the rest spread evenly over the clip.
    """
    kept: list[CandidateFrame] = []
    for candidate in candidates:
        if kept and REASON_SCENE not in candidate.reasons:
            if candidate.phash - kept[-1].phash <= near_duplicate_bits:
                continue
        kept.append(candidate)
    if len(kept) <= max_count:
        return kept, False
    scenes = [c for c in kept if REASON_SCENE in c.reasons][:max_count]
    others = [c for c in kept if REASON_SCENE not in c.reasons]
    room = max_count - len(scenes)
    if room > 0 and others:
        step = len(others) / room
        others = [others[int(i * step)] for i in range(room)]
    else:
        others = []
    chosen = sorted(scenes + others, key=lambda c: c.frame.timestamp_s)
    return chosen, True


def format_timestamp(seconds: float) -> str:
    """Return seconds as ``H:MM:SS.mmm`` (hours only when needed)."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    text = f"{minutes:02d}:{secs:02d}.{millis:03d}"
    return f"{hours}:{text}" if hours else text


CONTACT_SHEET_COLUMNS = 5
CONTACT_SHEET_TILE_WIDTH = 320
_LABEL_HEIGHT = 28
_GAP = 8
_HEADER_LINE_HEIGHT = 22
_CUT_COLOUR = (255, 140, 0)
_CUT_BAR_PX = 6


@dataclass(frozen=True)
class SheetHeader:
    """What a contact sheet says about its footage above the frames."""

    file_name: str
    sha256: str
    case_id: int | None
    duration_s: float | None  # None: a still, or a duration the container does not declare

    def lines(self) -> list[str]:
        duration = f"duration {format_timestamp(self.duration_s)}" if self.duration_s is not None else ""
        case = f"case {self.case_id}" if self.case_id is not None else ""
        return [
            self.file_name or "(no file name)",
            f"SHA-256 {self.sha256[:16]}",
            " · ".join(part for part in (case, duration) if part),
        ]


def contact_sheet_tile(image: Image.Image) -> Image.Image:
    """Return a copy of a frame image scaled for the contact sheet (at most a tile wide, two tall)."""
    tile = image.convert("RGB")
    tile.thumbnail((CONTACT_SHEET_TILE_WIDTH, CONTACT_SHEET_TILE_WIDTH * 2))
    return tile


def _fitted(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float
) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet_render(
    tiles: Sequence[tuple[Image.Image, float]],
    destination: Path,
    *,
    header: SheetHeader | None = None,
    cuts: Collection[int] = (),
) -> tuple[int, int]:
    """Draw the frames as a grid with each timestamp printed under its tile; return the size.

    Tiles keep their aspect ratio inside a cell as tall as the tallest scaled frame, so
    portrait phone video and landscape footage sit on the same sheet without distortion.
    ``header`` prints the file's facts above the grid; the tiles at the indexes in ``cuts``
    (the first frames after a hard cut) get an orange bar and "cut" beside their time.
    """
    if not tiles:
        raise ValueError("a contact sheet needs at least one frame")
    sizes = [image.size for image, _ in tiles]
    cell_height = max(round(CONTACT_SHEET_TILE_WIDTH * h / w) for w, h in sizes)
    cell_height = min(cell_height, CONTACT_SHEET_TILE_WIDTH * 2)
    columns = min(CONTACT_SHEET_COLUMNS, len(tiles))
    rows = -(-len(tiles) // columns)
    header_lines = [line for line in header.lines() if line] if header is not None else []
    header_height = len(header_lines) * _HEADER_LINE_HEIGHT + (_GAP if header_lines else 0)
    sheet_width = columns * CONTACT_SHEET_TILE_WIDTH + (columns + 1) * _GAP
    sheet_height = header_height + rows * (cell_height + _LABEL_HEIGHT) + (rows + 1) * _GAP
    sheet = Image.new("RGB", (sheet_width, sheet_height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=18)
    header_font = ImageFont.load_default(size=16)
    for index, line in enumerate(header_lines):
        text = _fitted(draw, line, header_font, sheet_width - 2 * _GAP)
        draw.text((_GAP, _GAP + index * _HEADER_LINE_HEIGHT), text, fill=(240, 240, 240), font=header_font)
    for index, (image, timestamp_s) in enumerate(tiles):
        row, column = divmod(index, columns)
        left = _GAP + column * (CONTACT_SHEET_TILE_WIDTH + _GAP)
        top = header_height + _GAP + row * (cell_height + _LABEL_HEIGHT + _GAP)
        tile = image.convert("RGB")
        tile.thumbnail((CONTACT_SHEET_TILE_WIDTH, cell_height))
        offset_x = left + (CONTACT_SHEET_TILE_WIDTH - tile.width) // 2
        offset_y = top + (cell_height - tile.height) // 2
        sheet.paste(tile, (offset_x, offset_y))
        label = format_timestamp(timestamp_s)
        if index in cuts:
            draw.rectangle((left, top, left + CONTACT_SHEET_TILE_WIDTH - 1, top + _CUT_BAR_PX - 1), fill=_CUT_COLOUR)
            draw.text((left, top + cell_height + 4), "cut", fill=_CUT_COLOUR, font=font)
        text_width = draw.textlength(label, font=font)
        draw.text(
            (left + (CONTACT_SHEET_TILE_WIDTH - text_width) / 2, top + cell_height + 4),
            label,
            fill=(240, 240, 240),
            font=font,
        )
    sheet.save(destination, "JPEG", quality=85)
    return sheet.size
