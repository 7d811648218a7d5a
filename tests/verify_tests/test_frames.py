"""Keyframe reasons, near-duplicate dropping, the cap, and contact sheets."""

import shutil
import time
from pathlib import Path

import ffmpeg as ffmpeg_python
import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from verify import ocr
from verify.ffmpeg import REFERENCE_SOURCES, SelectedFrame
from verify.frame_digests import FrameDigester, frame_digest
from verify.frames import (
    CandidateFrame,
    SheetHeader,
    contact_sheet_render,
    contact_sheet_tile,
    format_timestamp,
    frame_hash,
    frames_judge,
    keyframes_choose,
    phash,
    scene_cuts,
)


def selected(t: float, pict_type: str = "P") -> SelectedFrame:
    return SelectedFrame(path=Path(f"/tmp/{t}.jpg"), timestamp_s=t, pict_type=pict_type)


def candidate(t: float, bits: str, reasons: tuple[str, ...] = ("interval",)) -> CandidateFrame:
    phash = imagehash.hex_to_hash(f"{int(bits, 2):016x}")
    return CandidateFrame(frame=selected(t), reasons=reasons, scene_score=None, phash=phash, width=320, height=240)


def test_scene_cuts_takes_scores_above_threshold_once_per_shot():
    scores = [(0.0, 0.0), (4.0, 0.55), (4.04, 0.33), (6.0, 0.1), (8.0, 0.9), (8.6, 0.4)]

    assert scene_cuts(scores, threshold=0.3, min_shot_s=0.5) == [(4.0, 0.55), (8.0, 0.9), (8.6, 0.4)]


def test_frames_judge_keeps_iframes_confirmed_cuts_and_interval_samples():
    frames = [selected(0, "I"), selected(3.2), selected(4.0), selected(14.0), selected(20.0, "I"), selected(21.0)]
    cuts = [(4.0, 0.7)]
    scores = [(0.0, 0.0), (3.2, 0.12), (4.0, 0.7), (14.0, 0.01), (20.0, 0.02), (21.0, 0.2)]

    judged = frames_judge(frames, cuts=cuts, scores=scores, interval_s=10)

    # 3.2 and 21.0 were scene candidates that no cut confirmed
    assert [(j.frame.timestamp_s, j.reasons) for j in judged] == [
        (0, ("iframe", "interval")),
        (4.0, ("scene",)),
        (14.0, ("interval",)),
        (20.0, ("iframe",)),
    ]
    assert judged[1].scene_score == 0.7
    assert judged[2].scene_score == 0.01


def test_frames_judge_takes_the_first_frame_within_half_a_second_after_a_cut():
    frames = [selected(0, "I"), selected(4.2), selected(4.3)]

    judged = frames_judge(frames, cuts=[(4.0, 0.6)], scores=[], interval_s=10)

    assert [j.frame.timestamp_s for j in judged] == [0, 4.2]


def test_frames_judge_fast_mode_keeps_key_frames():
    judged = frames_judge([selected(0, "I"), selected(4, "I")], cuts=[], scores=[], interval_s=10)

    assert [j.reasons for j in judged] == [("iframe", "interval"), ("iframe",)]


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


@pytest.mark.parametrize("source", REFERENCE_SOURCES)
def test_phash_equals_imagehash_phash_on_decoded_frames(tmp_path, source):
    # given: a frame of each reference source, as ffmpeg writes keyframes, and a blob picture
    path = tmp_path / "frame.jpg"
    ffmpeg_python.input(f"{source}=s=640x360:r=25", f="lavfi", t=2).output(
        str(path), **{"frames:v": 1, "q:v": 2}, ss=1
    ).overwrite_output().run(quiet=True)

    for picture in (Image.open(path), blobs(len(source))):
        # then: the same 64 bits as the library's own pHash (which takes its DCT with scipy)
        assert str(phash(picture)) == str(imagehash.phash(picture))


def flat_pictures() -> list[Image.Image]:
    """Return pictures whose DCT has exact zeros: plain colours, gradients, title cards, half-black frames."""
    pictures = [Image.new("RGB", (640, 360), (grey, grey, grey)) for grey in (1, 16, 128, 235, 255)]
    pictures.append(Image.new("RGB", (320, 240), (10, 200, 30)))
    gradient = Image.linear_gradient("L")
    pictures += [gradient, gradient.rotate(90), gradient.resize((640, 360))]
    card = Image.new("RGB", (640, 360), (20, 20, 120))
    ImageDraw.Draw(card).text((200, 170), "BREAKING NEWS", fill=(255, 255, 255))
    pictures.append(card)
    half = np.zeros((360, 640), dtype=np.uint8)
    half[:, :320] = 200
    pictures.append(Image.fromarray(half))
    return pictures


def test_phash_equals_imagehash_phash_on_flat_pictures():
    for picture in flat_pictures():
        assert str(phash(picture)) == str(imagehash.phash(picture))


def test_contact_sheet_lays_out_tiles_in_rows(tmp_path):
    tiles = []
    for index in range(7):
        path = tmp_path / f"{index}.jpg"
        Image.new("RGB", (640, 360), (index * 30, 100, 100)).save(path)
        with Image.open(path) as image:
            tiles.append((contact_sheet_tile(image), index * 12.5))

    width, height = contact_sheet_render(tiles, tmp_path / "sheet.jpg")

    assert Image.open(tmp_path / "sheet.jpg").size == (width, height)
    assert width == 5 * 320 + 6 * 8
    assert height == 2 * (180 + 28) + 3 * 8


def test_contact_sheet_header_names_the_file_and_cut_tiles_are_marked(tmp_path):
    # given: three grey frames, the second the first after a cut
    tiles = [(Image.new("RGB", (320, 180), (90, 90, 90)), t) for t in (0.0, 15.0, 20.0)]
    header = SheetHeader("village-square.mp4", "464577c8" + "0" * 56, 12, 120.0)

    # when
    contact_sheet_render(tiles, tmp_path / "sheet.jpg", header=header, cuts={1})

    # then: the header reads as the file's facts, above the frames
    with Image.open(tmp_path / "sheet.jpg") as sheet:
        sheet.load()
    header_px = 3 * 22 + 8
    top = ImageOps.invert(sheet.crop((0, 0, sheet.width, header_px))).resize((sheet.width * 3, header_px * 3))
    words = ocr.image_words(top, languages="eng", confidence_floor=50.0)
    text = " ".join(word.text for word in words)
    for expected in ("village-square", "464577c800000000", "case 12", "02:00.000"):
        assert expected in text, text
    # and: only the tile after the cut has the orange bar, with "cut" beside its time
    tile_top = header_px + 8

    def bar(column: int) -> tuple[int, ...]:
        return tuple(sheet.getpixel((8 + column * 328 + 160, tile_top + 2)))  # type: ignore[arg-type]

    assert bar(1)[0] > 200 and bar(1)[2] < 80
    assert bar(0)[0] < 120 and bar(2)[0] < 120


def test_contact_sheet_needs_a_frame(tmp_path):
    with pytest.raises(ValueError):
        contact_sheet_render([], tmp_path / "sheet.jpg")


@pytest.mark.parametrize(("seconds", "text"), [(0, "00:00.000"), (75.5, "01:15.500"), (3723.25, "1:02:03.250")])
def test_format_timestamp(seconds, text):
    assert format_timestamp(seconds) == text


def _noise_jpeg(path: Path, seed: int) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    Image.fromarray(pixels).resize((1280, 720)).save(path, "JPEG", quality=90)
    return path


def test_frame_digester_digests_each_frame_once_the_next_one_is_written(tmp_path):
    sources = [_noise_jpeg(tmp_path / f"source-{index}.jpg", index) for index in range(4)]
    out = tmp_path / "frames"
    out.mkdir()
    written = []
    with FrameDigester(out) as digester:
        for index, source in enumerate(sources, 1):
            written.append(out / f"frame_{index:06d}.jpg")
            shutil.copyfile(source, written[-1])
        deadline = time.monotonic() + 10
        while digester.digested() != set(written[:-1]) and time.monotonic() < deadline:
            time.sleep(0.02)
        # Every complete frame is done while "ffmpeg" still runs; the newest one may be half-written.
        assert digester.digested() == set(written[:-1])
    for path in written:
        assert digester.digest(path) == frame_digest(path)
    assert digester.digested() == set(written)
    assert len({digester.digest(path).pdq.pdq for path in written}) == 4
