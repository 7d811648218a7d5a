"""Submit footage through the API and let a real Celery worker analyse it with real ffmpeg."""

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from tests import media
from tests.conftest import submit, wait_for_analysis
from verify.models import Keyframe, MediaItem
from workflows.models import Case

pytestmark = pytest.mark.worker


def keyframe_times(detail: dict[str, Any]) -> list[float]:
    return [k["timestamp_s"] for k in detail["keyframes"]]


def assert_keyframe_after_each_cut(times: list[float], cuts: list[float]) -> None:
    for cut in cuts:
        assert any(cut <= t <= cut + 0.5 for t in times), f"no keyframe within 0.5 s after the cut at {cut}s: {times}"


def test_analysis_multi_shot_clip_succeeds_with_keyframes_at_cuts(api, worker, shots_clip: Path):
    # when
    response = submit(api, shots_clip, title="Border village", claim="Soldiers hiding in a village")
    # then: accepted at once, with the hash of the bytes and a place to poll
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(shots_clip.read_bytes()).hexdigest()
    assert body["size_bytes"] == shots_clip.stat().st_size
    # a worker on Redis can claim the job between the commit and the answer being written
    assert body["state"] in ("queued", "running")
    assert response["Location"] == body["status_url"]

    outcome = wait_for_analysis(api, body["id"])
    detail = outcome.detail
    assert detail["state"] == "succeeded", detail["error"]
    assert detail["error"] is None
    metadata = detail["metadata"]
    assert metadata["container"].startswith("mov,mp4")
    assert metadata["duration_s"] == pytest.approx(8.0, abs=0.1)
    assert metadata["video_codec"] == "h264"
    assert (metadata["coded_width"], metadata["coded_height"]) == (320, 240)
    assert (metadata["display_width"], metadata["display_height"]) == (320, 240)
    assert metadata["rotation_deg"] == 0
    assert metadata["frame_rate_fps"] == pytest.approx(25.0)
    assert metadata["audio_codec"] == "aac"
    assert metadata["audio_sample_rate_hz"] == 44100
    assert metadata["creation_time"] is None  # the clip carries no date: none is invented
    assert metadata["creation_time_source"] == ""
    assert metadata["latitude"] is None and metadata["longitude"] is None
    assert metadata["ffprobe"]["format"]["format_name"] == metadata["container"]

    times = keyframe_times(detail)
    assert_keyframe_after_each_cut(times, [2.0, 4.0, 6.0])
    assert times == sorted(times) and times[0] == 0.0
    scene_frames = [k for k in detail["keyframes"] if "scene" in k["reasons"]]
    assert len(scene_frames) == 3
    assert all(k["scene_score"] > 0.3 for k in scene_frames)
    assert all(len(k["phash"]) == 16 for k in detail["keyframes"])
    assert detail["keyframes_truncated"] is False
    assert detail["ffmpeg_version"]

    # and the case is ready for review
    case = api.get(f"/api/v1/cases/{detail['case']}/").json()
    assert case["status"] == "ready_for_review"
    assert [m["id"] for m in case["media_items"]] == [body["id"]]


def test_analysis_keyframe_images_are_upright_jpegs_served_to_users(api, worker, shots_clip: Path):
    item_id = submit(api, shots_clip).json()["id"]
    detail = wait_for_analysis(api, item_id).detail
    first = detail["keyframes"][0]

    response = api.get(first["image_url"])

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert image.size == (first["width"], first["height"]) == (320, 240)


def test_analysis_contact_sheet_shows_every_keyframe(api, worker, shots_clip: Path):
    item_id = submit(api, shots_clip).json()["id"]
    detail = wait_for_analysis(api, item_id).detail

    response = api.get(detail["contact_sheet_url"])

    assert response.status_code == 200
    sheet = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    columns = min(5, len(detail["keyframes"]))
    assert sheet.width >= columns * 320
    assert sheet.height > 240  # at least one row of tiles plus the timestamp labels
    # the first frame after each cut carries an orange bar; the others do not (header: three lines)
    rgb = sheet.convert("RGB")
    tops = {index: 3 * 22 + 8 + 8 + (index // 5) * (240 + 28 + 8) + 2 for index in range(len(detail["keyframes"]))}
    barred = [rgb.getpixel((8 + (i % 5) * 328 + 160, top))[0] > 200 for i, top in tops.items()]  # type: ignore[index]
    assert barred == ["scene" in keyframe["reasons"] for keyframe in detail["keyframes"]]
    assert sum(barred) == 3  # cuts at 2, 4 and 6 s


def darkest_corner(image: Image.Image, patch: int = 24) -> str:
    """Return the corner whose small patch is darkest (testsrc2's timer box is near-black)."""
    gray = image.convert("L")
    w, h = gray.size
    boxes = {
        "top-left": (0, 0, patch, patch),
        "top-right": (w - patch, 0, w, patch),
        "bottom-left": (0, h - patch, patch, h),
        "bottom-right": (w - patch, h - patch, w, h),
    }
    means = {name: ImageStat.Stat(gray.crop(box)).mean[0] for name, box in boxes.items()}
    return min(means, key=lambda name: means[name])


def test_analysis_rotated_phone_clip_has_upright_frames_and_swapped_display_size(api, worker, footage_dir: Path):
    # given: a 320x240 stream with testsrc2's dark timer box top-left, stored with a display matrix
    plain = media.single_shot_clip(footage_dir / "landscape.mp4", source="testsrc2")
    rotated = media.with_metadata(plain, footage_dir / "rotated.mp4", {}, rotate_deg=90)
    # when
    item_id = submit(api, rotated).json()["id"]
    detail = wait_for_analysis(api, item_id).detail
    # then: the display size is swapped and the frames are turned the way the rotation says
    assert detail["state"] == "succeeded", detail["error"]
    metadata = detail["metadata"]
    assert metadata["rotation_deg"] in (90, 270)
    assert (metadata["coded_width"], metadata["coded_height"]) == (320, 240)
    assert (metadata["display_width"], metadata["display_height"]) == (240, 320)
    assert {(k["width"], k["height"]) for k in detail["keyframes"]} == {(240, 320)}
    response = api.get(detail["keyframes"][0]["image_url"])
    frame = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    expected_corner = {90: "top-right", 270: "bottom-left"}[metadata["rotation_deg"]]  # clockwise turn
    assert darkest_corner(frame) == expected_corner


def test_analysis_reads_creation_time_and_location_from_tags(api, worker, footage_dir: Path):
    plain = media.single_shot_clip(footage_dir / "tagged-source.mp4")
    tagged = media.with_metadata(
        plain,
        footage_dir / "tagged.mp4",
        {"creation_time": "2024-03-01T10:20:30.000000Z", "location": "+50.4253+036.8949+112.5/"},
    )

    detail = wait_for_analysis(api, submit(api, tagged).json()["id"]).detail

    metadata = detail["metadata"]
    assert metadata["creation_time"] == "2024-03-01T10:20:30Z"
    assert metadata["creation_time_source"] == "format:creation_time"
    assert metadata["latitude"] == pytest.approx(50.4253)
    assert metadata["longitude"] == pytest.approx(36.8949)
    assert metadata["altitude_m"] == pytest.approx(112.5)
    assert metadata["location_source"] == "format:location"


def test_analysis_reads_device_make_and_model(api, worker, footage_dir: Path):
    plain = media.single_shot_clip(footage_dir / "device-source.mp4")
    tagged = media.with_metadata(plain, footage_dir / "device.mp4", {"make": "Apple", "model": "iPhone 12"})

    metadata = wait_for_analysis(api, submit(api, tagged).json()["id"]).detail["metadata"]

    assert metadata["device_make"] == "Apple"
    assert metadata["device_model"] == "iPhone 12"


def test_analysis_timestamps_follow_pts_on_variable_frame_rate_video(api, worker, footage_dir: Path):
    # given: shots at 25, 10 and 30 fps; frame index / fps would put the cuts in the wrong place
    clip = media.shots_clip(
        footage_dir / "vfr.mp4", sources=media.SHOT_SOURCES[:3], frame_rates=[25, 10, 30], audio=False
    )
    # when
    detail = wait_for_analysis(api, submit(api, clip).json()["id"]).detail
    # then
    assert detail["state"] == "succeeded", detail["error"]
    scene_times = [k["timestamp_s"] for k in detail["keyframes"] if "scene" in k["reasons"]]
    assert scene_times == [pytest.approx(2.0, abs=0.05), pytest.approx(4.0, abs=0.05)]


def test_analysis_long_single_shot_still_yields_interval_frames(api, worker, footage_dir: Path, settings):
    # given: one 25-second shot with no cut; the interval sampler (10 s) must still pick frames
    clip = media.single_shot_clip(footage_dir / "long-shot.mp4", duration_s=25, source="mandelbrot")

    detail = wait_for_analysis(api, submit(api, clip).json()["id"]).detail

    interval_times = [k["timestamp_s"] for k in detail["keyframes"] if "interval" in k["reasons"]]
    assert len(interval_times) >= 3
    assert interval_times[0] == 0.0
    assert all(b - a >= 9.99 for a, b in zip(interval_times, interval_times[1:], strict=False))


def test_analysis_fast_mode_picks_only_key_frames(api, worker, shots_clip: Path):
    detail = wait_for_analysis(api, submit(api, shots_clip, mode="fast").json()["id"]).detail

    assert detail["state"] == "succeeded", detail["error"]
    assert detail["mode"] == "fast"
    assert detail["keyframes"]
    assert all("iframe" in k["reasons"] and "scene" not in k["reasons"] for k in detail["keyframes"])


def test_analysis_status_progresses_in_order(api, worker, footage_dir: Path):
    clip = media.shots_clip(footage_dir / "progress.mp4", shot_s=4, size="640x360", sources=media.SHOT_SOURCES[:5])

    statuses = wait_for_analysis(api, submit(api, clip).json()["id"]).statuses

    order = ["waiting", "probe", "keyframes", "hashes", "contact_sheet", "done"]
    stages = [order.index(s["stage"]) for s in statuses]
    assert stages == sorted(stages)
    percents = [s["progress_percent"] for s in statuses]
    assert percents == sorted(percents)
    states = ["queued", "running", "succeeded"]
    seen = [states.index(s["state"]) for s in statuses]
    assert seen == sorted(seen)  # a fast worker may claim the job before the first poll
    # a script polling every 0.1 s sees the work in progress, not only its end
    running = [s for s in statuses if s["state"] == "running"]
    assert any(s["stage"] == "keyframes" and 0 < s["progress_percent"] < 100 for s in running), statuses
    assert statuses[-1] == {**statuses[-1], "state": "succeeded", "stage": "done", "progress_percent": 100}


# An MP4 file-type box passes the upload's content sniffing; what follows is not a movie.
MP4_HEADER = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("random.mp4", MP4_HEADER + bytes(range(256)) * 64),
        ("notes.mp4", MP4_HEADER + b"These are my notes about the footage.\n" * 100),
    ],
)
def test_analysis_unreadable_file_fails_cleanly_and_keeps_the_original(api, worker, footage_dir, name, content):
    path = footage_dir / name
    path.write_bytes(content)
    response = submit(api, path)
    assert response.status_code == 202

    detail = wait_for_analysis(api, response.json()["id"]).detail

    assert detail["state"] == "failed"
    assert detail["error"]["code"] == "unreadable_media"
    assert "could not be read as audio or video" in detail["error"]["message"]
    assert "Traceback" not in detail["error"]["message"]
    assert str(footage_dir) not in detail["error"]["message"]
    assert detail["attempts"] == 1  # a bad file is a recorded failure, not a retry loop
    original = api.get(detail["original_url"])
    assert b"".join(original.streaming_content) == content
    case = api.get(f"/api/v1/cases/{detail['case']}/").json()
    assert case["status"] == "ready_for_review"  # reviewers still see the claim and the file


def test_analysis_truncated_mp4_fails_cleanly(api, worker, shots_clip: Path, footage_dir: Path):
    truncated = footage_dir / "truncated.mp4"
    truncated.write_bytes(shots_clip.read_bytes()[: shots_clip.stat().st_size // 3])

    detail = wait_for_analysis(api, submit(api, truncated).json()["id"]).detail

    assert detail["state"] == "failed"
    assert detail["error"]["code"] in {"unreadable_media", "decode_failed", "no_decodable_frames"}
    assert Path(MediaItem.objects.get(pk=detail["id"]).original.path).read_bytes() == truncated.read_bytes()


def test_analysis_of_a_case_with_two_items_waits_for_both(api, worker, shots_clip: Path, footage_dir: Path):
    first = submit(api, shots_clip).json()
    second_clip = media.single_shot_clip(footage_dir / "second.mp4")
    second = submit(api, second_clip, case=first["case"]).json()
    assert second["case"] == first["case"]

    wait_for_analysis(api, first["id"])
    wait_for_analysis(api, second["id"])

    assert Case.objects.get(pk=first["case"]).status == Case.Status.READY_FOR_REVIEW
    assert Keyframe.objects.filter(media_item_id=second["id"]).exists()
