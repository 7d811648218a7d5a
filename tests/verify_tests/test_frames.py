"""Keyframe reasons, near-duplicate dropping, the cap, and contact sheets."""

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from verify.ffmpeg import SelectedFrame
from verify.frames import (
    CandidateFrame,
    contact_sheet_render,
    format_timestamp,
    frame_hash,
    frame_reasons,
    keyframes_choose,
)


def selected(t: float, pict_type: str = "P", scene: float | None = 0.0) -> SelectedFrame:
    return SelectedFrame(path=Path(f"/tmp/{t}.jpg"), timestamp_s=t, pict_type=pict_type, scene_score=scene)


def candidate(t: float, bits: str, reasons: tuple[str, ...] = ("interval",)) -> CandidateFrame:
    phash = imagehash.hex_to_hash(f"{int(bits, 2):016x}")
    return CandidateFrame(frame=selected(t), reasons=reasons, phash=phash, width=320, height=240)


def test_frame_reasons_mirror_the_select_expression():
    frames = [selected(0, "I"), selected(3.2, "P", 0.8), selected(13.2), selected(20.0, "I")]

    reasons = frame_reasons(frames, scene_threshold=0.3, interval_s=10)

    assert reasons == [("iframe", "interval"), ("scene",), ("interval",), ("iframe",)]


def test_frame_reasons_fast_mode_has_no_scene_reason():
    reasons = frame_reasons([selected(0, "I", None), selected(4, "I", None)], scene_threshold=None, interval_s=10)

    assert reasons == [("iframe", "interval"), ("iframe",)]


def test_keyframes_choose_drops_near_identical_neighbours_but_keeps_cuts():
    same = "1" * 32 + "0" * 32
    almost = "1" * 31 + "0" * 33  # one bit away
    frames = [
        candidate(0, same),
        candidate(10, almost),
        candidate(12, almost, reasons=("scene",)),
        candidate(20, "0" * 32 + "1" * 32),
    ]

    chosen, truncated = keyframes_choose(frames, max_count=10, near_duplicate_bits=6)

    assert [c.frame.timestamp_s for c in chosen] == [0, 12, 20]
    assert truncated is False


def test_keyframes_choose_caps_the_count_keeping_cuts_first():
    rng = np.random.default_rng(7)
    frames = [
        candidate(t, "".join(rng.choice(["0", "1"], 64)), reasons=("scene",) if t % 10 == 0 else ("interval",))
        for t in range(40)
    ]

    chosen, truncated = keyframes_choose(frames, max_count=8, near_duplicate_bits=0)

    times = [c.frame.timestamp_s for c in chosen]
    assert truncated is True
    assert len(chosen) == 8
    assert {0, 10, 20, 30} <= set(times)
    assert times == sorted(times)


def blobs(seed: int) -> Image.Image:
    """Return a 320x240 picture of soft random blobs."""
    cells = np.random.default_rng(seed).integers(0, 256, (12, 16), dtype=np.uint8)
    return Image.fromarray(cells).resize((320, 240), Image.Resampling.BICUBIC).convert("RGB")


def test_frame_hash_is_stable_and_tells_different_pictures_apart(tmp_path):
    blobs(1).save(tmp_path / "a.jpg", quality=95)
    blobs(1).resize((160, 120)).save(tmp_path / "a-small.jpg", quality=60)
    blobs(2).save(tmp_path / "b.jpg", quality=95)

    a, width, height = frame_hash(tmp_path / "a.jpg")
    a_small, _, _ = frame_hash(tmp_path / "a-small.jpg")
    b, _, _ = frame_hash(tmp_path / "b.jpg")

    assert (width, height) == (320, 240)
    assert a - a_small <= 4
    assert a - b > 20


def test_contact_sheet_lays_out_tiles_in_rows(tmp_path):
    tiles = []
    for index in range(7):
        path = tmp_path / f"{index}.jpg"
        Image.new("RGB", (640, 360), (index * 30, 100, 100)).save(path)
        tiles.append((path, index * 12.5))

    width, height = contact_sheet_render(tiles, tmp_path / "sheet.jpg")

    assert Image.open(tmp_path / "sheet.jpg").size == (width, height)
    assert width == 5 * 320 + 6 * 8
    assert height == 2 * (180 + 28) + 3 * 8


def test_contact_sheet_needs_a_frame(tmp_path):
    with pytest.raises(ValueError):
        contact_sheet_render([], tmp_path / "sheet.jpg")


@pytest.mark.parametrize(("seconds", "text"), [(0, "00:00.000"), (75.5, "01:15.500"), (3723.25, "1:02:03.250")])
def test_format_timestamp(seconds, text):
    assert format_timestamp(seconds) == text
