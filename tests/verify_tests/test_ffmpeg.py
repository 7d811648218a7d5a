"""Builders against expected argv, parsers against recorded ffprobe JSON, the runner on real ffmpeg."""

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_python
import pytest

from tests import media
from verify import ffmpeg
from verify.models import MediaMetadata

# Trimmed ffprobe answer for a portrait iPhone clip (QuickTime keys, display matrix).
IPHONE_PROBE = {
    "streams": [
        {
            "index": 0,
            "codec_name": "hevc",
            "codec_type": "video",
            "width": 1920,
            "height": 1080,
            "r_frame_rate": "30/1",
            "avg_frame_rate": "5394000/179953",
            "nb_frames": "899",
            "disposition": {"attached_pic": 0},
            "tags": {"creation_time": "2023-06-14T17:02:11.000000Z", "handler_name": "Core Media Video"},
            "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}],
        },
        {
            "index": 1,
            "codec_name": "aac",
            "codec_type": "audio",
            "sample_rate": "44100",
            "channels": 2,
            "tags": {"creation_time": "2023-06-14T17:02:11.000000Z"},
        },
    ],
    "format": {
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "format_long_name": "QuickTime / MOV",
        "duration": "29.984000",
        "bit_rate": "10240511",
        "tags": {
            "major_brand": "qt  ",
            "creation_time": "2023-06-14T17:02:11.000000Z",
            "com.apple.quicktime.location.ISO6709": "+48.8577+002.2950+035.000/",
            "com.apple.quicktime.make": "Apple",
            "com.apple.quicktime.model": "iPhone 13",
            "com.apple.quicktime.software": "16.5",
            "com.apple.quicktime.creationdate": "2023-06-14T19:02:10+0200",
        },
    },
}


def test_probe_argv_allows_only_local_files_and_accepted_demuxers():
    argv = ffmpeg.probe_argv(Path("/srv/media/originals/ab/abcdef"), ffprobe="/usr/bin/ffprobe")

    assert argv[0] == "/usr/bin/ffprobe"
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"
    demuxers = argv[argv.index("-format_whitelist") + 1].split(",")
    assert "mov" in demuxers and "matroska" in demuxers
    assert not {"hls", "concat", "image2", "data", "subfile"} & set(demuxers)
    assert argv[-1] == "file:/srv/media/originals/ab/abcdef"


def test_probe_argv_refuses_a_relative_path():
    with pytest.raises(ValueError, match="absolute"):
        ffmpeg.probe_argv(Path("-i"), ffprobe="ffprobe")


def keyframes_argv(tmp_path: Path, candidate_threshold: float | None, **options: Any) -> list[str]:
    return ffmpeg.keyframes_argv(
        Path("/srv/x"),
        ffmpeg="ffmpeg",
        out_dir=tmp_path,
        candidates_file=tmp_path / "candidates.txt",
        scores_file=tmp_path / "scores.txt",
        scene_candidate_threshold=candidate_threshold,
        interval_s=10,
        max_frames=800,
        **options,
    )


def test_keyframes_argv_full_mode_is_one_decoding_pass_with_three_selectors(tmp_path):
    argv = keyframes_argv(tmp_path, 0.08)

    assert argv.count("-i") == 1
    graph = argv[argv.index("-filter_complex") + 1]
    assert graph.count("split") == 1
    assert "select=eq(pict_type\\,I)+gt(scene\\,0.08)+isnan(prev_selected_t)+gte(t-prev_selected_t\\,10)" in graph
    assert "scale=160:90:flags=fast_bilinear" in graph and "select=gte(scene\\,0)" in graph
    assert "showinfo" in graph
    assert "-skip_frame" not in argv
    assert argv[argv.index("-fps_mode") + 1] == "vfr"
    assert argv[argv.index("-frames:v") + 1] == "800"
    assert argv[argv.index("-i") + 1] == "file:/srv/x"
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"
    # the filters on one thread, the JPEG encoder on one, the decoder on ffmpeg's own count
    assert argv[argv.index("-filter_complex_threads") + 1] == "1"
    assert argv[argv.index("-threads:v") + 1] == "1"
    assert "-threads" not in argv
    assert argv[argv.index("-huffman") + 1] == "default"


def test_keyframes_argv_sets_the_decoder_threads_on_the_input(tmp_path):
    argv = keyframes_argv(tmp_path, 0.08, decoder_threads=4)

    assert argv[argv.index("-threads") + 1] == "4"
    assert argv.index("-threads") < argv.index("-i")


def test_keyframes_argv_fast_mode_decodes_key_frames_only(tmp_path):
    argv = keyframes_argv(tmp_path, None)

    assert argv[argv.index("-skip_frame") + 1] == "nokey"
    assert argv.index("-skip_frame") < argv.index("-i")
    graph = argv[argv.index("-filter_complex") + 1]
    assert "scene" not in graph and "split" not in graph
    # writing JPEGs is most of fast mode's work: two encoder threads
    assert argv[argv.index("-threads:v") + 1] == "2"


def test_parse_probe_normalises_an_iphone_clip():
    probe = ffmpeg.parse_probe(IPHONE_PROBE)

    assert probe.container == "mov,mp4,m4a,3gp,3g2,mj2"
    assert probe.duration_s == pytest.approx(29.984)
    assert probe.bit_rate_bps == 10240511
    assert probe.video_codec == "hevc"
    assert (probe.coded_width, probe.coded_height) == (1920, 1080)
    assert probe.rotation_deg == 90
    assert (probe.display_width, probe.display_height) == (1080, 1920)
    assert probe.frame_rate_fps == pytest.approx(29.974, abs=0.001)
    assert probe.frame_count == 899
    assert (probe.audio_codec, probe.audio_channels, probe.audio_sample_rate_hz) == ("aac", 2, 44100)
    # the QuickTime creation date keeps the phone's local offset and wins over creation_time
    assert probe.creation_time == datetime(2023, 6, 14, 17, 2, 10, tzinfo=UTC)
    assert probe.creation_time_source == "format:com.apple.quicktime.creationdate"
    assert probe.location == ffmpeg.Location(latitude=48.8577, longitude=2.2950, altitude_m=35.0)
    assert probe.location_source == "format:com.apple.quicktime.location.ISO6709"
    assert (probe.device_make, probe.device_model, probe.device_software) == ("Apple", "iPhone 13", "16.5")


def test_parse_probe_answers_every_stored_metadata_field():
    probe = ffmpeg.parse_probe(IPHONE_PROBE)

    values = {name: getattr(probe, name) for name in MediaMetadata.normalised_field_names()}

    assert (values["latitude"], values["longitude"], values["altitude_m"]) == (48.8577, 2.2950, 35.0)
    assert values["device_model"] == "iPhone 13" and values["encoder"] == probe.encoder


def test_parse_probe_leaves_absent_facts_empty():
    probe = ffmpeg.parse_probe(
        {"streams": [{"codec_type": "audio", "codec_name": "opus"}], "format": {"format_name": "ogg"}}
    )

    assert probe.has_video is False and probe.has_audio is True
    assert probe.creation_time is None and probe.creation_time_source == ""
    assert probe.location is None
    assert probe.duration_s is None
    assert probe.display_width is None


def test_parse_probe_ignores_placeholder_dates_and_cover_art():
    data = {
        "streams": [
            {
                "codec_type": "video",
                "codec_name": "mjpeg",
                "width": 600,
                "height": 600,
                "disposition": {"attached_pic": 1},
            }
        ],
        "format": {"format_name": "mp3", "tags": {"creation_time": "1970-01-01T00:00:00.000000Z"}},
    }

    probe = ffmpeg.parse_probe(data)

    assert probe.creation_time is None
    assert probe.has_video is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+50.4253+036.8949/", (50.4253, 36.8949, None)),
        ("-33.8688+151.2093+058.000/", (-33.8688, 151.2093, 58.0)),
        ("+4043.5-07400.25/", (40 + 43.5 / 60, -(74 + 0.25 / 60), None)),
        ("+404330-0740015+12CRSWGS_84/", (40 + 43 / 60 + 30 / 3600, -(74 + 0 / 60 + 15 / 3600), 12.0)),
    ],
)
def test_parse_iso6709_reads_degrees_minutes_and_seconds(text, expected):
    location = ffmpeg.parse_iso6709(text)

    assert location is not None
    assert (location.latitude, location.longitude) == pytest.approx(expected[:2])
    assert location.altitude_m == expected[2]


@pytest.mark.parametrize("text", ["", "somewhere", "+95.0+010.0/", "+10.0+190.0/"])
def test_parse_iso6709_rejects_what_is_not_a_point(text):
    assert ffmpeg.parse_iso6709(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:20:30.000000Z", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-01T12:20:30+0200", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-01 10:20:30", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("yesterday", None),
    ],
)
def test_parse_tag_datetime(text, expected):
    assert ffmpeg.parse_tag_datetime(text) == expected


def test_parse_probe_json_reports_ffprobe_errors():
    with pytest.raises(ffmpeg.ProbeParseError, match="Invalid data"):
        ffmpeg.parse_probe_json(json.dumps({"error": {"code": -1094995529, "string": "Invalid data found"}}))


def test_parse_selected_frames_reads_pts_time_and_picture_type(tmp_path):
    for index in (1, 2):
        (tmp_path / f"frame_{index:06d}.jpg").write_bytes(b"")
    stderr = (
        "[Parsed_showinfo_2 @ 0x1] n:   0 pts:      0 pts_time:0       pos: 48 fmt:yuv420p s:320x240 "
        "i:P iskey:1 type:I checksum:1\n"
        "[Parsed_showinfo_2 @ 0x1] color_range:unknown\n"
        "[Parsed_showinfo_2 @ 0x1] n:   1 pts:  30720 pts_time:2.04    pos: 99 fmt:yuv420p s:320x240 "
        "i:P iskey:0 type:P checksum:2\n"
    )

    frames = ffmpeg.parse_selected_frames(stderr=stderr, out_dir=tmp_path)

    assert [(f.timestamp_s, f.pict_type) for f in frames] == [(0.0, "I"), (2.04, "P")]
    assert frames[1].path.name == "frame_000002.jpg"


def test_parse_scene_scores_reads_every_frame():
    text = (
        "frame:0    pts:0       pts_time:0\nlavfi.scene_score=0.000000\n"
        "frame:1    pts:30720   pts_time:2.04\nlavfi.scene_score=0.461380\n"
    )

    assert ffmpeg.parse_scene_scores(text) == [(0.0, 0.0), (2.04, 0.46138)]


def test_parse_probe_on_a_generated_clip_with_tags(tmp_path):
    # given: a real file written by ffmpeg with a creation time and a location
    clip = media.with_metadata(
        media.single_shot_clip(tmp_path / "plain.mp4", duration_s=1),
        tmp_path / "tagged.mp4",
        {"creation_time": "2022-02-24T04:50:00Z", "location": "+50.4501+030.5234/"},
    )
    # when
    result = ffmpeg.run(ffmpeg.probe_argv(clip, ffprobe="ffprobe"), timeout_s=30)
    probe = ffmpeg.parse_probe(ffmpeg.parse_probe_json(result.stdout))
    # then
    assert probe.creation_time == datetime(2022, 2, 24, 4, 50, tzinfo=UTC)
    assert probe.location is not None and probe.location.latitude == pytest.approx(50.4501)
    assert probe.duration_s == pytest.approx(1.0, abs=0.05)


def test_run_kills_the_process_group_on_timeout():
    # an endless lavfi source never finishes on its own
    argv = (
        ffmpeg_python.input("testsrc2=s=64x64:r=25", f="lavfi")
        .output("-", f="null")
        .global_args("-nostdin")
        .compile(cmd="ffmpeg")
    )
    started = time.monotonic()

    with pytest.raises(ffmpeg.FFmpegError) as raised:
        ffmpeg.run(argv, timeout_s=1.0)

    assert raised.value.timed_out is True
    assert time.monotonic() - started < 5


def test_run_reports_exit_code_and_stderr_tail(tmp_path):
    missing = tmp_path / "missing.mp4"

    with pytest.raises(ffmpeg.FFmpegError) as raised:
        ffmpeg.run(ffmpeg.probe_argv(missing, ffprobe="ffprobe"), timeout_s=30)

    assert raised.value.exit_code == 1
    assert raised.value.timed_out is False
    assert "No such file" in raised.value.stderr_tail + raised.value.stdout


def test_run_applies_output_file_size_limit(tmp_path):
    argv = (
        ffmpeg_python.input("testsrc2=s=320x240:r=25", f="lavfi", t=20)
        .output(str(tmp_path / "big.y4m"))
        .global_args("-nostdin")
        .compile(cmd="ffmpeg")
    )

    with pytest.raises(ffmpeg.FFmpegError):
        ffmpeg.run(argv, timeout_s=30, limits=ffmpeg.ResourceLimits(output_file_bytes=1024 * 1024))

    assert (tmp_path / "big.y4m").stat().st_size <= 1024 * 1024


def test_parse_progress_and_version():
    assert ffmpeg.parse_progress_out_time_s("out_time_us=2500000") == 2.5
    assert ffmpeg.parse_progress_out_time_s("frame=12") is None
    assert ffmpeg.parse_version("ffmpeg version 5.1.9-0+deb12u1 Copyright (c)") == "5.1.9-0+deb12u1"
