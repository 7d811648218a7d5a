"""What decoded, against what the container declares: truncated and damaged files say so."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests import media
from tests.conftest import make_user, submit, token_client, wait_for_analysis
from verify import ffmpeg
from verify.client.display import analysis_summary

RECORDED_STDERR = """\
[Parsed_showinfo_2 @ 0x55f8] [info] n:   0 pts:      0 pts_time:0       type:I
[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55f890d77100] [error] stream 0, offset 0x3e136: partial file
[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55f890d77100] [error] stream 0, offset 0x3ec41: partial file
[h264 @ 0x55f642036c40] [error] error while decoding MB 6 10, bytestream 1842
[warning] file:/srv/media/originals/ab/abcdef: corrupt decoded frame in stream 0
[h264 @ 0x55f642036c40] [warning] mmco: unref short failure
"""


def test_parse_decode_errors_groups_kinds_and_hides_the_server_path():
    errors = ffmpeg.parse_decode_errors(RECORDED_STDERR, input_path=Path("/srv/media/originals/ab/abcdef"))

    assert [(e.message, e.count) for e in errors] == [
        ("mov,mp4,m4a,3gp,3g2,mj2: stream 0, offset 0x3e136: partial file", 2),
        ("h264: error while decoding MB 6 10, bytestream 1842", 1),
        ("the file: corrupt decoded frame in stream 0", 1),
    ]


def test_keyframes_argv_logs_each_line_with_its_level_and_repeats_unfolded(tmp_path):
    argv = ffmpeg.keyframes_argv(
        Path("/srv/x"), ffmpeg="ffmpeg", out_dir=tmp_path, candidates_file=tmp_path / "c.txt",
        scores_file=tmp_path / "s.txt", scene_candidate_threshold=0.08, interval_s=10, max_frames=8,
    )  # fmt: skip

    assert argv[argv.index("-loglevel") + 1] == "repeat+level+info"


def test_parse_progress_end_s_is_the_last_position():
    assert ffmpeg.parse_progress_end_s("frame=3\nout_time_us=1000000\nprogress=continue\nout_time_us=2920000\n") == 2.92
    assert ffmpeg.parse_progress_end_s("progress=end\n") is None


@pytest.fixture(scope="session")
def whole_clip(footage_dir: Path) -> Path:
    """12 s of 320x240 video in four shots, its index at the front (as phones and platforms write)."""
    source = media.shots_clip(footage_dir / "decoding-source.mp4", shot_s=3.0)
    return media.faststart_copy(source, footage_dir / "decoding-whole.mp4")


def summary(detail: dict[str, Any]) -> dict[str, str]:
    return dict(analysis_summary(detail))


def test_truncated_and_damaged_files_say_what_decoded_and_a_whole_file_does_not(worker, whole_clip, footage_dir):
    # given: the same footage whole, cut to its first quarter, and with bytes flipped
    truncated = media.truncated_copy(whole_clip, footage_dir / "decoding-truncated.mp4", keep_fraction=0.25)
    damaged = media.bit_flipped_copy(whole_clip, footage_dir / "decoding-damaged.mp4", flips=40)
    analyst = make_user("decoder", "analyst")
    api = token_client(analyst)
    ids = {}
    for name, path in (("whole", whole_clip), ("truncated", truncated), ("damaged", damaged)):
        response = submit(api, path, title=f"Footage {name}")
        assert response.status_code == 202, response.content
        ids[name] = response.json()["id"]

    # when
    details = {name: wait_for_analysis(api, item_id).detail for name, item_id in ids.items()}

    # then: all three succeed; only the truncated one is partial, with the decoded and declared lengths
    assert {name: d["state"] for name, d in details.items()} == dict.fromkeys(ids, "succeeded")
    cut = details["truncated"]
    match = re.fullmatch(r"Decoded ([\d.]+) s of a declared 12 s; the file is truncated or damaged", cut["partial"])
    assert match, cut["partial"]
    assert 0.5 < float(match[1]) < 6
    assert cut["metadata"]["duration_s"] == pytest.approx(12, abs=0.1)  # the header's promise, kept
    assert cut["metadata"]["decoded_duration_s"] == pytest.approx(float(match[1]), abs=0.05)
    assert cut["metadata"]["decoded_frame_count"] < cut["metadata"]["frame_count"] / 2
    assert cut["metadata"]["decode_error_count"] > 0
    assert [s["code"] for s in cut["signals"]][:2] == ["partial", "decode_errors"]
    assert summary(cut)["partial"] == cut["partial"]

    whole = details["whole"]
    assert whole["partial"] is None
    assert not {"partial", "decode_errors"} & {s["code"] for s in whole["signals"]}
    assert whole["metadata"]["decoded_duration_s"] == pytest.approx(12, abs=0.1)
    assert whole["metadata"]["decoded_frame_count"] == whole["metadata"]["frame_count"] == 300
    assert whole["metadata"]["decode_error_count"] == 0
    assert "partial" not in summary(whole)
    assert summary(whole)["decoded"] == "12.00 s, 300 frames, 0 decode errors"

    flipped = details["damaged"]
    assert flipped["metadata"]["decode_error_count"] > 0
    errors = next(s for s in flipped["signals"] if s["code"] == "decode_errors")
    assert errors["title"] == f"ffmpeg reported {flipped['metadata']['decode_error_count']} decode errors"
    assert str(Path(damaged).parent) not in str(flipped["metadata"]["decode_errors"])  # no server path

    # and: the desk shows the truncated item's sentence above its metadata, and nothing for the whole one
    desk = Client()
    desk.force_login(make_user("desk-reviewer", "reviewer", is_staff=True))
    cut_page = desk.get(reverse("admin:workflows_case_change", args=[cut["case"]])).content.decode()
    assert re.search(
        r'class="desk-alert partial-decode" role="alert"><strong>Decoded [\d.]+ s of a declared 12 s', cut_page
    )
    whole_page = desk.get(reverse("admin:workflows_case_change", args=[whole["case"]])).content.decode()
    assert "partial-decode" not in whole_page
    assert "12.00 s · 300 frames · 0 decode errors" in whole_page
