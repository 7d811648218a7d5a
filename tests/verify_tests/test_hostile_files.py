"""Files built to attack the analysis: each ends in a clear refusal and leaks nothing.

The playlists point at a canary: a local file holding a random token. If any layer (upload,
ffprobe, ffmpeg, the stored metadata, the API, the worker log, the database) ever read it, the
token would show up; the tests look for it everywhere.
"""

from __future__ import annotations

import io
import json
import random
import secrets
import signal
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from PIL import Image

from tests import media
from tests.conftest import submit, wait_for_analysis
from verify import ffmpeg
from verify.analysis import analysis_run
from verify.models import MediaItem

# --- building the hostile files -------------------------------------------------------------


@dataclass(frozen=True)
class Canary:
    token: str
    segment: Path  # an MPEG-TS clip whose program and title carry the token
    text: Path  # a plain file holding only the token


def run_ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Canary:
    folder = tmp_path_factory.mktemp("canary")
    token = f"CANARY{secrets.token_hex(16)}"
    segment = folder / "segment.ts"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=1", "-c:v", "mpeg2video",
               "-metadata", f"service_name={token}", "-metadata", f"title={token}", str(segment))  # fmt: skip
    text = folder / "secret.txt"
    text.write_text(f"{token}\n")
    return Canary(token=token, segment=segment, text=text)


def hls_playlist(canary: Canary) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0"]
    for target in (canary.segment, canary.text):
        lines += ["#EXTINF:1.0,", f"file:{target}"]
    return ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode()


def ffconcat_script(canary: Canary) -> bytes:
    return f"ffconcat version 1.0\nfile '{canary.segment}'\nfile '{canary.text}'\n".encode()


def _riff_chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _riff_list(kind: bytes, body: bytes) -> bytes:
    return b"LIST" + struct.pack("<I", len(body) + 4) + kind + body


def avi_with_playlist_in_gab2_subtitle(playlist: bytes) -> bytes:
    """Return an AVI whose only stream is a GAB2 subtitle chunk holding ``playlist``.

    ffmpeg's AVI demuxer probes the payload of a GAB2 chunk and opens a nested demuxer on it:
    the CVE-2017-9993 route to reading local files through an HLS playlist.
    """
    description = "subtitles".encode("utf-16-le")
    gab2 = (
        b"GAB2\x00\x02\x00"
        + struct.pack("<I", len(description))
        + description
        + struct.pack("<HI", 4, len(playlist))
        + playlist
    )
    avih = struct.pack("<14I", 1_000_000, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0)
    strh = struct.pack("<4s4sIHHIIIIIIII4h", b"txts", b"\0" * 4, 0, 0, 0, 0, 1, 1, 0, 1, len(gab2), 0, 0, 0, 0, 0, 0)
    header = _riff_list(b"hdrl", _riff_chunk(b"avih", avih) + _riff_list(b"strl", _riff_chunk(b"strh", strh)
                        + _riff_chunk(b"strf", b"\0" * 4)))  # fmt: skip
    body = b"AVI " + header + _riff_list(b"movi", _riff_chunk(b"00tx", gab2))
    return b"RIFF" + struct.pack("<I", len(body)) + body


def png_declaring(width: int, height: int) -> bytes:
    """Return a tiny PNG whose header declares a frame of width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + width * 3) * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def many_streams_clip(path: Path, streams: int) -> Path:
    maps = [arg for _ in range(streams) for arg in ("-map", "0:a")]
    run_ffmpeg("-f", "lavfi", "-i", "sine=d=0.05", *maps, "-c:a", "pcm_s16le", str(path))
    return path


def all_intra_clip(path: Path, *, fps: int = 60, duration_s: float = 2.0) -> Path:
    run_ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x240:r={fps}:d={duration_s}", "-c:v", "libx264",
               "-preset", "ultrafast", "-g", "1", "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path


def script_tag_clip(source: Path, path: Path, *, size_bytes: int = 10 * 1024 * 1024) -> Path:
    """Copy source with a ``comment`` tag of size_bytes that starts with a <script> element."""
    tags = path.with_suffix(".ffmetadata")
    tags.write_text(";FFMETADATA1\ncomment=<script>alert(document.cookie)</script>" + "A" * size_bytes + "\n")
    run_ffmpeg("-i", str(source), "-i", str(tags), "-map", "0", "-map_metadata", "1", "-c", "copy", str(path))
    return path


# --- where the canary must not be -----------------------------------------------------------


def assert_canary_absent(canary: Canary, *, api: Any, item_id: int | None, worker: Any = None) -> None:
    """Look for the token in every answer, stored image, log and row a user or operator can see."""
    token = canary.token.encode()
    places: dict[str, bytes] = {}
    if item_id is not None:
        for name in ("", "status/"):
            places[f"GET /media/{item_id}/{name}"] = api.get(f"/api/v1/media/{item_id}/{name}").content
        detail = api.get(f"/api/v1/media/{item_id}/").json()
        places["case"] = api.get(f"/api/v1/cases/{detail['case']}/").content
        for keyframe in detail["keyframes"]:
            image = b"".join(api.get(keyframe["image_url"]).streaming_content)
            places[f"keyframe {keyframe['id']} JPEG"] = image
            places[f"keyframe {keyframe['id']} pixels"] = Image.open(io.BytesIO(image)).tobytes()
    if worker is not None:
        places["worker log"] = worker.log().encode()
    dump = io.StringIO()
    call_command("dumpdata", "verify", "workflows", stdout=dump)
    places["database"] = dump.getvalue().encode()
    leaked = [place for place, content in places.items() if token in content]
    assert not leaked, f"the canary token leaked into: {leaked}"


# --- refused at the door --------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "build", "found"),
    [
        ("playlist.mp4", hls_playlist, "an HLS playlist"),
        ("playlist.m3u8", hls_playlist, "an HLS playlist"),
        ("script.ffconcat", ffconcat_script, "an ffconcat script"),
        ("noise.mp4", lambda canary: random.Random(3).randbytes(256 * 1024), "unrecognised binary data"),
    ],
    ids=["hls-as-mp4", "hls-m3u8", "ffconcat", "random-bytes"],
)
def test_hostile_upload_is_refused_before_anything_is_stored(api, canary, tmp_path, name, build, found):
    path = tmp_path / name
    path.write_bytes(build(canary))

    response = submit(api, path)

    assert response.status_code == 400, response.content
    file_error = response.json()["error"]["fields"]["file"][0]
    assert file_error["code"] == "unsupported_content"
    assert found in file_error["message"]
    assert MediaItem.objects.count() == 0
    assert canary.token.encode() not in response.content
    assert_canary_absent(canary, api=api, item_id=None)


@pytest.mark.django_db
def test_hostile_zero_byte_upload_is_refused(api, tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")

    response = submit(api, path)

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["file"][0]["code"] == "empty"


@pytest.mark.parametrize("build", [hls_playlist, ffconcat_script], ids=["hls", "ffconcat"])
def test_hostile_playlist_is_refused_by_ffprobe_and_ffmpeg_themselves(canary, tmp_path, build):
    # given: a playlist that got past the upload (as if sniffing had a gap), named like a video
    playlist = tmp_path / "clip.mp4"
    playlist.write_bytes(build(canary))
    out_dir = tmp_path / "frames"
    out_dir.mkdir()
    runs = {
        "ffprobe": ffmpeg.probe_argv(playlist, ffprobe="ffprobe"),
        "ffmpeg": ffmpeg.keyframes_argv(
            playlist, ffmpeg="ffmpeg", out_dir=out_dir, candidates_file=tmp_path / "c.txt",
            scores_file=tmp_path / "s.txt", scene_candidate_threshold=0.08, interval_s=10, max_frames=10,
        ),
    }  # fmt: skip
    for program, argv in runs.items():
        # when
        with pytest.raises(ffmpeg.FFmpegError) as failure:
            ffmpeg.run(argv, timeout_s=30)
        # then: the demuxer allow-list refused it, and nothing from the canary came out
        refused = [r.detail for r in ffmpeg.parse_refusals(failure.value.stderr_tail) if r.kind == "format"]
        assert refused in (["hls"], ["concat"]), (program, failure.value.stderr_tail)
        assert canary.token not in failure.value.stderr_tail + failure.value.stdout
    assert list(out_dir.iterdir()) == []


# --- refused by the analysis, through the real worker ---------------------------------------


@pytest.mark.worker
def test_hostile_avi_with_hls_in_a_gab2_subtitle_fails_without_opening_it(api, worker, canary, tmp_path):
    path = tmp_path / "subtitled.avi"
    path.write_bytes(avi_with_playlist_in_gab2_subtitle(hls_playlist(canary)))

    response = submit(api, path)
    assert response.status_code == 202, response.content
    detail = wait_for_analysis(api, response.json()["id"]).detail

    assert detail["state"] == "failed"
    assert detail["error"]["code"] == "no_media_streams"
    assert detail["keyframes"] == []
    assert [s["codec_type"] for s in detail["metadata"]["ffprobe"]["streams"]] == ["subtitle"]
    assert "codec_name" not in detail["metadata"]["ffprobe"]["streams"][0]  # the nested demuxer never ran
    assert_canary_absent(canary, api=api, item_id=detail["id"], worker=worker)


@pytest.mark.worker
@pytest.mark.parametrize(
    ("name", "build", "code"),
    [
        ("huge.png", lambda tmp: png_declaring(65500, 65500), "dimensions_exceed_limit"),
        ("streams.mkv", lambda tmp: many_streams_clip(tmp / "streams-src.mkv", 300).read_bytes(), "too_many_streams"),
    ],
    ids=["65500x65500-frame", "300-streams"],
)
def test_hostile_file_over_a_limit_fails_with_its_code(api, worker, canary, tmp_path, name, build, code):
    path = tmp_path / name
    path.write_bytes(build(tmp_path))

    response = submit(api, path)
    assert response.status_code == 202, response.content
    detail = wait_for_analysis(api, response.json()["id"]).detail

    assert detail["state"] == "failed"
    assert detail["error"]["code"] == code
    assert detail["attempts"] == 1
    assert detail["keyframes"] == []
    assert_canary_absent(canary, api=api, item_id=detail["id"], worker=worker)


@pytest.mark.worker
def test_hostile_truncated_mp4_fails_with_a_clear_code(api, worker, canary, shots_clip, tmp_path):
    path = tmp_path / "truncated.mp4"
    path.write_bytes(shots_clip.read_bytes()[:4096])

    detail = wait_for_analysis(api, submit(api, path).json()["id"]).detail

    assert detail["state"] == "failed"
    assert detail["error"]["code"] == "unreadable_media"
    assert "moov atom not found" in detail["error"]["message"] or "Invalid data" in detail["error"]["message"]


@pytest.mark.worker
def test_hostile_ten_megabyte_script_tag_is_stored_cut_and_served_escaped(api, worker, footage_dir, tmp_path):
    # given
    clip = script_tag_clip(media.single_shot_clip(footage_dir / "plain-for-tag.mp4"), tmp_path / "tagged.mp4")
    assert clip.stat().st_size > 10 * 1024 * 1024
    # when
    item_id = submit(api, clip).json()["id"]
    detail = wait_for_analysis(api, item_id).detail
    # then: the analysis went on; the tag is kept cut to the limit and flagged
    assert detail["state"] == "succeeded", detail["error"]
    metadata = detail["metadata"]
    assert metadata["values_truncated"] is True
    comment = metadata["ffprobe"]["format"]["tags"]["comment"]
    assert comment.startswith("<script>alert(document.cookie)</script>AAAA")
    assert len(comment) == 4096
    # and: the JSON carries it escaped, and the browsable page shows it as text
    raw = api.get(f"/api/v1/media/{item_id}/", HTTP_ACCEPT="application/json")
    assert raw["Content-Type"] == "application/json"
    assert raw["X-Content-Type-Options"] == "nosniff"
    assert b"<script>" not in raw.content
    assert b"\\u003cscript\\u003ealert(document.cookie)" in raw.content
    assert len(raw.content) < 100_000
    page = api.get(f"/api/v1/media/{item_id}/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b"<script>alert(document.cookie)" not in page.content


# --- limits, in process (real ffmpeg, the analysis service called directly) -----------------


def analyse_in_process(api, path: Path) -> dict[str, Any]:
    """Upload path (the job is not sent: the test transaction never commits) and analyse it here."""
    item_id = submit(api, path).json()["id"]
    analysis_run(media_item_id=item_id)
    return api.get(f"/api/v1/media/{item_id}/").json()


@pytest.fixture(scope="module")
def intra_clip(footage_dir: Path) -> Path:
    return all_intra_clip(footage_dir / "all-intra-60fps.mp4")


@pytest.mark.django_db
def test_limit_all_intra_60fps_clip_keeps_at_most_the_keyframe_cap(api, settings, intra_clip):
    settings.VERIFY_MAX_KEYFRAMES = 5
    settings.VERIFY_NEAR_DUPLICATE_BITS = 0  # testsrc2 moves slowly; keep every distinct frame in play

    detail = analyse_in_process(api, intra_clip)

    assert detail["state"] == "succeeded", detail["error"]
    assert detail["metadata"]["frame_rate_fps"] == pytest.approx(60)
    assert len(detail["keyframes"]) == 5
    assert detail["keyframes_truncated"] is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setting", "value", "code", "message"),
    [
        ("VERIFY_MAX_FRAME_RATE_FPS", 30, "frame_rate_exceeds_limit", "declares 60 frames per second"),
        ("VERIFY_MAX_DURATION_S", 1, "duration_exceeds_limit", "the limit is 1 s"),
        ("VERIFY_MAX_FRAME_PIXELS", 10_000, "dimensions_exceed_limit", "320 x 240 pixels"),
        ("VERIFY_MAX_STREAMS", 1, "too_many_streams", "more than 1 streams"),
        ("VERIFY_MAX_METADATA_BYTES", 2000, "metadata_too_large", "metadata is larger than the limit"),
        ("VERIFY_FFMPEG_OUTPUT_FILE_BYTES", 10_000, "resource_limit_exceeded", "a file larger than allowed"),
    ],
)
def test_limit_refuses_with_its_code_and_the_limit(api, settings, footage_dir, setting, value, code, message):
    # given: 60 fps, 320x240, two streams (video + audio), 3 s
    clip = footage_dir / "limits.mp4"
    if not clip.exists():
        run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=60:d=3", "-f", "lavfi", "-i", "sine=d=3",
                   "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                   str(clip))  # fmt: skip
    setattr(settings, setting, value)

    detail = analyse_in_process(api, clip)

    assert detail["state"] == "failed"
    assert detail["error"]["code"] == code
    assert message in detail["error"]["message"]
    assert detail["attempts"] == 1
    assert json.dumps(detail).count("Traceback") == 0


def test_runner_cpu_time_limit_stops_ffmpeg_before_its_wall_clock_deadline():
    argv = ["ffmpeg", "-nostdin", "-f", "lavfi", "-i", "mandelbrot=s=640x480", "-t", "600", "-f", "null", "-"]

    with pytest.raises(ffmpeg.FFmpegError) as failure:
        ffmpeg.run(argv, timeout_s=60, limits=ffmpeg.ResourceLimits(cpu_time_s=1))

    assert failure.value.killed_by_signal in (signal.SIGXCPU, signal.SIGKILL)
    assert not failure.value.timed_out


def test_runner_address_space_limit_stops_ffmpeg(tmp_path):
    argv = ffmpeg.probe_argv(media.single_shot_clip(tmp_path / "c.mp4", duration_s=1), ffprobe="ffprobe")

    with pytest.raises(ffmpeg.FFmpegError) as failure:
        ffmpeg.run(argv, timeout_s=30, limits=ffmpeg.ResourceLimits(address_space_bytes=32 * 1024**2))

    assert failure.value.exit_code != 0


def test_runner_caps_what_it_reads_from_a_chatty_process(tmp_path):
    argv = ffmpeg.probe_argv(media.single_shot_clip(tmp_path / "c.mp4", duration_s=1), ffprobe="ffprobe")

    with pytest.raises(ffmpeg.FFmpegError) as failure:
        ffmpeg.run(argv, timeout_s=30, max_stdout_bytes=100)

    assert failure.value.output_exceeded == "stdout"
