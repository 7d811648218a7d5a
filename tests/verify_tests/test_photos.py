"""Photos through the real worker: metadata, HEIC, orientation and signals, as the API shows them."""

from __future__ import annotations

import io

import imagehash
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from PIL import Image

from tests import media, photos
from tests.conftest import make_user, submit, wait_for_analysis
from verify import photos as stills

# How a viewer turns the stored pixels for each EXIF orientation; the test stores the inverse.
DISPLAY = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
INVERSE = {**DISPLAY, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def keyframe_image(api, detail) -> Image.Image:
    response = api.get(detail["keyframes"][0]["image_url"])
    assert response.status_code == 200
    return Image.open(io.BytesIO(b"".join(response.streaming_content)))


def desk_page(case_id: int) -> str:
    """Return the case page of the reviewer's desk, as a reviewer sees it."""
    client = Client()
    reviewer = get_user_model().objects.filter(username="desk-reviewer").first()
    client.force_login(reviewer or make_user("desk-reviewer", "reviewer", is_staff=True))
    response = client.get(reverse("admin:workflows_case_change", args=[case_id]))
    assert response.status_code == 200
    return response.content.decode()


def close(a: Image.Image, b: Image.Image, bits: int = 8) -> bool:
    return imagehash.phash(a) - imagehash.phash(b.resize(a.size)) <= bits


def test_phone_jpeg_shows_place_capture_time_with_offset_and_camera(api, worker, tmp_path):
    # given an iPhone photo, stored sideways (EXIF orientation 6)
    upright = photos.photograph("coffee.png")
    path = tmp_path / "IMG_0042.jpg"
    upright.transpose(INVERSE[6]).save(path, quality=90)
    photos.exiftool_write(path, {"Orientation#": "6"})
    photos.exiftool_write(path, {}, *[f"-{k}={v}" for k, v in _phone_tags().items()])

    # when it is analysed
    detail = wait_for_analysis(api, submit(api, path).json()["id"]).detail

    # then the API shows the place, the local time with its offset, the instant and the camera
    assert detail["state"] == "succeeded", detail["error"]
    meta = detail["metadata"]
    assert (meta["latitude"], meta["longitude"], meta["altitude_m"]) == (50.4501, 30.5234, 179.0)
    assert meta["capture_time_local"] == "2023-06-01T14:03:22.120000" and meta["capture_time_zone"] == "+03:00"
    assert meta["creation_time"] == "2023-06-01T11:03:22.120000Z"
    assert (meta["device_make"], meta["device_model"]) == ("Apple", "iPhone 13")
    assert meta["exif_orientation"] == 6 and meta["rotation_deg"] == 90
    assert (meta["display_width"], meta["display_height"]) == upright.size
    # and the one keyframe is the picture itself, upright
    assert [k["reasons"] for k in detail["keyframes"]] == [["photo"]]
    assert close(keyframe_image(api, detail), upright)
    assert detail["signals"] == []
    assert detail["c2pa"]["state"] == "absent"
    # and the desk shows the place on a map, the capture time with its zone and the camera
    desk = desk_page(detail["case"])
    assert "mlat=50.450100&amp;mlon=30.523400" in desk
    assert "2023-06-01 14:03:22.12 (UTC+03:00)" in desk
    assert "Apple iPhone 13" in desk
    assert "None: the file carries no Content Credentials" in desk


def _phone_tags() -> dict[str, str]:
    return {
        "Make": "Apple",
        "Model": "iPhone 13",
        "DateTimeOriginal": "2023:06:01 14:03:22",
        "OffsetTimeOriginal": "+03:00",
        "SubSecTimeOriginal": "120",
        "GPSLatitude": "50.4501",
        "GPSLatitudeRef": "N",
        "GPSLongitude": "30.5234",
        "GPSLongitudeRef": "E",
        "GPSAltitude": "179",
    }


def test_iphone_heic_succeeds_upright_with_its_metadata(api, worker, tmp_path):
    # given a HEIC written by pillow-heif the way an iPhone stores a portrait shot: sideways plus irot
    upright = photos.photograph("astronaut.png").resize((640, 480))
    exif = Image.Exif()
    exif.update({0x010F: "Apple", 0x0110: "iPhone 15 Pro", 0x0112: 6})
    path = tmp_path / "IMG_1234.HEIC"
    upright.transpose(INVERSE[6]).save(path, format="HEIF", exif=exif.tobytes(), quality=85)

    detail = wait_for_analysis(api, submit(api, path).json()["id"]).detail

    assert detail["state"] == "succeeded", detail["error"]
    meta = detail["metadata"]
    assert meta["container"] == "heif" and meta["video_codec"] == "hevc"
    assert (meta["device_make"], meta["device_model"]) == ("Apple", "iPhone 15 Pro")
    assert (meta["display_width"], meta["display_height"]) == (640, 480)
    frame = keyframe_image(api, detail)
    assert frame.size == (640, 480)
    assert close(frame, upright)  # turned once: not left sideways, not turned twice


@pytest.mark.parametrize("orientation", range(1, 9))
def test_photo_decode_turns_every_exif_orientation_upright(tmp_path, orientation):
    upright = photos.photograph("chelsea.png")
    path = tmp_path / "o.jpg"
    stored = upright.transpose(INVERSE[orientation]) if orientation in INVERSE else upright
    stored.save(path, quality=92)
    photos.exiftool_write(path, {"Orientation#": str(orientation)})

    decoded = stills.photo_decode(path, kind="jpeg", max_pixels=50_000_000, derived_path=tmp_path / "d.jpg")

    result = Image.open(tmp_path / "d.jpg")
    assert result.size == upright.size == (decoded.display_width, decoded.display_height)
    assert close(result, upright, bits=6)
    assert decoded.mirrored is (orientation in (2, 4, 5, 7))


def test_signals_name_editor_replaced_thumbnail_and_missing_metadata(api, worker, tmp_path):
    # given a photo saved by Photoshop whose EXIF thumbnail shows another picture, GPS 0/0 and a
    # placeholder date
    other = tmp_path / "other.jpg"
    photos.photograph("chelsea.png").resize((160, 120)).save(other, quality=80)
    edited = photos.camera_jpeg(
        tmp_path / "edited.jpg", name="astronaut.png", Software="Adobe Photoshop 25.0 (Windows)",
        DateTimeOriginal="0000:00:00 00:00:00", GPSLatitude="0", GPSLongitude="0",
    )  # fmt: skip
    photos.exiftool_write(edited, {}, f"-ThumbnailImage<={other}")
    bare = photos.camera_jpeg(tmp_path / "forwarded.jpg", name="coffee.png")

    edited_detail = wait_for_analysis(api, submit(api, edited).json()["id"]).detail
    bare_detail = wait_for_analysis(api, submit(api, bare).json()["id"]).detail

    codes = [s["code"] for s in edited_detail["signals"]]
    assert codes[:2] == ["editing_software", "thumbnail_differs"], edited_detail["signals"]
    assert "Photoshop" in edited_detail["signals"][0]["evidence"]
    meta = edited_detail["metadata"]
    assert meta["latitude"] is None and meta["capture_time_local"] == "" and meta["creation_time"] is None
    assert [s["code"] for s in bare_detail["signals"]] == ["no_camera_metadata"]
    assert "messaging apps" in bare_detail["signals"][0]["evidence"]
    desk = desk_page(edited_detail["case"])
    assert "Saved by editing software" in desk and "The embedded EXIF thumbnail shows a different picture" in desk


def test_video_with_gps_zero_zero_has_no_location(api, worker, tmp_path):
    clip = media.single_shot_clip(tmp_path / "plain.mp4", duration_s=1.0)
    tagged = media.with_metadata(clip, tmp_path / "null-island.mp4", {"location": "+00.0000+000.0000/"})

    detail = wait_for_analysis(api, submit(api, tagged).json()["id"]).detail

    assert detail["state"] == "succeeded"
    meta = detail["metadata"]
    assert meta["latitude"] is None and meta["longitude"] is None and meta["location_source"] == ""
