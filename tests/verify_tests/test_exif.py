"""exiftool reading and normalising: recorded answers, and photos tagged with the real exiftool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests import photos
from verify import exif, exif_reader, ffmpeg


def read(path):
    return exif.parse_exif(exif_reader.exif_read(path, timeout_s=10))


def test_parse_exif_reads_a_phone_photo_with_place_time_and_device(tmp_path):
    facts = read(photos.phone_jpeg(tmp_path / "phone.jpg"))

    assert (facts.latitude, facts.longitude, facts.altitude_m) == (50.4501, 30.5234, 179.0)
    assert facts.location_source == "GPS:GPSLatitude+GPSLongitude"
    assert (facts.location_accuracy_m, facts.image_direction_deg) == (4.5, 121.5)
    assert facts.capture_time_local == "2023-06-01T14:03:22.120000" and facts.capture_time_zone == "+03:00"
    assert facts.creation_time == datetime(2023, 6, 1, 11, 3, 22, 120000, tzinfo=UTC)
    assert facts.creation_time_source == "ExifIFD:DateTimeOriginal+OffsetTimeOriginal+SubSecTimeOriginal"
    assert (facts.device_make, facts.device_model, facts.device_software) == ("Apple", "iPhone 13", "16.5")
    assert facts.lens_model.startswith("iPhone 13 back")


def test_parse_exif_keeps_a_time_without_zone_local(tmp_path):
    path = photos.camera_jpeg(tmp_path / "a.jpg", DateTimeOriginal="2022:02:24 05:10:00")

    facts = read(path)

    assert facts.capture_time_local == "2022-02-24T05:10:00" and facts.capture_time_zone == ""
    assert facts.creation_time is None  # never silently UTC


def test_parse_exif_takes_the_instant_from_gps_time_when_the_zone_is_unknown(tmp_path):
    path = photos.camera_jpeg(
        tmp_path / "a.jpg",
        DateTimeOriginal="2022:02:24 05:10:00",
        GPSDateStamp="2022:02:24",
        GPSTimeStamp="03:10:00",
        GPSLatitude="48.5",
        GPSLatitudeRef="N",
        GPSLongitude="35.0",
        GPSLongitudeRef="E",
    )

    facts = read(path)

    assert facts.creation_time == datetime(2022, 2, 24, 3, 10, tzinfo=UTC)
    assert facts.creation_time_source == "GPS:GPSDateStamp+GPSTimeStamp"
    assert facts.altitude_m is None  # GPS without altitude


def test_parse_exif_reads_southern_western_and_below_sea_level(tmp_path):
    path = photos.camera_jpeg(
        tmp_path / "a.jpg",
        GPSLatitude="33.8688",
        GPSLatitudeRef="S",
        GPSLongitude="70.5",
        GPSLongitudeRef="W",
        GPSAltitude="12",
        GPSAltitudeRef="Below Sea Level",
        DateTimeOriginal="2021:01:01 10:00:00",
        OffsetTimeOriginal="-05:00",
    )

    facts = read(path)

    assert (facts.latitude, facts.longitude, facts.altitude_m) == (-33.8688, -70.5, -12.0)
    assert facts.creation_time == datetime(2021, 1, 1, 10, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize(
    "tags",
    [
        {"GPSLatitude": "0", "GPSLatitudeRef": "N", "GPSLongitude": "0", "GPSLongitudeRef": "E"},
        {"GPSVersionID": "2.3.0.0"},  # an empty GPS block
    ],
    ids=["null-island", "empty-gps-block"],
)
def test_parse_exif_treats_placeholder_positions_as_absent(tmp_path, tags):
    facts = read(photos.camera_jpeg(tmp_path / "a.jpg", **tags))

    assert facts.location is None and facts.location_source == ""


@pytest.mark.parametrize("value", ["0000:00:00 00:00:00", "1970:01:01 00:00:00", "    :  :     :  :  "])
def test_parse_exif_treats_placeholder_dates_as_absent(value):
    facts = exif.parse_exif({"ExifIFD:DateTimeOriginal": value, "ExifIFD:OffsetTimeOriginal": "+02:00"})

    assert facts.capture_time_local == "" and facts.creation_time is None


def test_parse_exif_reads_apple_quicktime_keys_with_their_zone():
    facts = exif.parse_exif(
        {
            "Keys:CreationDate": "2023:06:14 19:02:10+02:00",
            "QuickTime:CreateDate": "2023:06:14 17:02:11",
            "Keys:GPSCoordinates": "48.8577 2.295 35",
            "Composite:GPSLatitude": "48.8577",
            "Composite:GPSLongitude": "2.295",
            "Composite:GPSAltitude": "35",
            "Keys:Make": "Apple",
            "Keys:Model": "iPhone 13",
        }
    )

    assert facts.creation_time == datetime(2023, 6, 14, 17, 2, 10, tzinfo=UTC)
    assert facts.capture_time_local == "2023-06-14T19:02:10" and facts.capture_time_zone == "+02:00"
    assert facts.location_source == "Keys:GPSCoordinates"
    assert facts.device_model == "iPhone 13"


def test_parse_exif_reads_editing_traces(tmp_path):
    path = photos.camera_jpeg(
        tmp_path / "a.jpg",
        Software="Adobe Photoshop 25.0 (Windows)",
        **{"XMP-xmp__CreatorTool": "Adobe Photoshop 25.0", "IPTC__Caption-Abstract": "Shelling, 3 March"},
        **{"XMP-xmpMM__HistoryAction": "saved", "XMP-xmpMM__HistorySoftwareAgent": "Adobe Photoshop 25.0"},
    )

    facts = read(path)

    assert facts.creator_tool == "Adobe Photoshop 25.0"
    assert facts.caption == "Shelling, 3 March"
    assert facts.edit_history == [{"action": "saved", "software": "Adobe Photoshop 25.0", "when": ""}]


def test_exif_read_keeps_this_servers_file_fields_out(tmp_path):
    tags = exif_reader.exif_read(photos.camera_jpeg(tmp_path / "secret-dir-name.jpg"), timeout_s=10)

    assert "SourceFile" not in tags
    assert not [key for key in tags if key.startswith("System:")]
    assert "secret-dir-name" not in str(tags)


@pytest.mark.parametrize("text", ["+00.0000+000.0000/", "+00.0000+000.0000+000.000/"])
def test_parse_iso6709_treats_null_island_as_no_location(text):
    assert ffmpeg.parse_iso6709(text) is None
