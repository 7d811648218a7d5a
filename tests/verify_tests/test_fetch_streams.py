"""Separate video and audio: the format choice, the stream-copy join, and a DASH post fetched in-process."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_python
import pytest
from django.core.files.storage import default_storage

from tests import fetch_server
from tests.conftest import make_user
from tests.fetch_server import FetchServer
from verify import ffmpeg
from verify.fetching.fetch import media_item_fetch
from verify.fetching.ytdlp import formats_choose
from verify.intake import media_item_create_from_link
from workflows.services import case_create


def _format(format_id: str, *, vcodec: str | None, acodec: str | None, height: int | None = None) -> dict[str, Any]:
    return {"format_id": format_id, "vcodec": vcodec, "acodec": acodec, "height": height}


def _ids(formats: list[dict[str, Any]]) -> list[str]:
    return [f["format_id"] for f in formats_choose(formats)]


def test_formats_choose_prefers_one_progressive_file_at_the_best_height() -> None:
    formats = [
        _format("a", vcodec="none", acodec="opus"),
        _format("v720", vcodec="avc1", acodec="none", height=720),
        _format("p720", vcodec="avc1", acodec="mp4a", height=720),
    ]
    assert _ids(formats) == ["p720"]


def test_formats_choose_pairs_the_taller_video_only_stream_with_the_best_audio() -> None:
    formats = [
        _format("p360", vcodec="avc1", acodec="mp4a", height=360),
        _format("a64", vcodec="none", acodec="mp4a"),
        _format("a128", vcodec="none", acodec="mp4a"),
        _format("v1080", vcodec="avc1", acodec="none", height=1080),
    ]
    assert _ids(formats) == ["a128", "v1080"]  # the video last: yt-dlp's answer then describes it


def test_formats_choose_takes_a_lone_stream_or_a_direct_file_as_it_is() -> None:
    assert _ids([_format("v", vcodec="vp9", acodec="none", height=480)]) == ["v"]
    assert _ids([_format("mp4", vcodec=None, acodec=None)]) == ["mp4"]  # a direct link: codecs unknown
    assert _ids([_format("a1", vcodec="none", acodec="mp4a"), _format("a2", vcodec="none", acodec="opus")]) == ["a2"]
    assert _ids([]) == []


def test_streams_join_argv_copies_the_video_of_one_file_and_the_audio_of_the_other() -> None:
    argv = ffmpeg.streams_join_argv(
        video=Path("/w/002-post.mp4"), audio=Path("/w/001-post.m4a"), output=Path("/w/joined/002-post.mp4"),
        ffmpeg="ffmpeg",
    )  # fmt: skip
    tail = argv[argv.index("-map") :]
    assert tail[:10] == [
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-f",
        "mp4",
        "-c",
        "copy",
        "file:/w/joined/002-post.mp4",
        "-nostdin",
    ]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-i"] == ["file:/w/002-post.mp4", "file:/w/001-post.m4a"]
    assert argv.count("-protocol_whitelist") == 2
    assert ffmpeg.streams_join_container(video_ext="webm", audio_ext="webm") == "webm"
    assert ffmpeg.streams_join_container(video_ext="mp4", audio_ext="webm") == "mkv"


@pytest.fixture
def dash_server(footage_dir: Path) -> Iterator[FetchServer]:
    video, audio = footage_dir / "dash-video.mp4", footage_dir / "dash-audio.m4a"
    if not video.exists():
        source = ffmpeg_python.input("testsrc2=s=320x240:r=25", f="lavfi", t=2)
        source.output(str(video), vcodec="libx264", preset="ultrafast").overwrite_output().run(quiet=True)
        tone = ffmpeg_python.input("sine=frequency=440:duration=2", f="lavfi")
        tone.output(str(audio), acodec="aac").overwrite_output().run(quiet=True)
    served = FetchServer(port=int(os.environ["VERIFY_FETCH_SERVER_PORT"]))
    served.routes["/v/video.mp4"] = fetch_server.body(video.read_bytes(), "video/mp4")
    served.routes["/v/audio.m4a"] = fetch_server.body(audio.read_bytes(), "audio/mp4")
    manifest = fetch_server.dash_manifest(
        video_url=served.url("/v/video.mp4"), audio_url=served.url("/v/audio.m4a"), width=320, height=240,
        duration_s=2,
    )  # fmt: skip
    served.routes["/v/post.mpd"] = fetch_server.body(manifest, "application/dash+xml")
    yield served
    served.close()


@pytest.mark.django_db
def test_separate_video_and_audio_are_downloaded_apart_and_joined_by_stream_copy(dash_server: FetchServer) -> None:
    # given
    user = make_user("streams", "analyst")
    case = case_create(title="Convoy", claim="Filmed yesterday.", created_by=user)
    item = media_item_create_from_link(case=case, url=dash_server.url("/v/post.mpd"), uploaded_by=user)

    # when
    media_item_fetch(item)

    # then
    item.refresh_from_db()
    assert dash_server.requests["/v/video.mp4"] == 1 and dash_server.requests["/v/audio.m4a"] == 1
    assert item.source_post is not None
    assert item.source_post.streams_merged == "v240 + a128"
    assert item.original_filename == "post.mp4"
    with default_storage.open(item.original.name, "rb") as handle:
        content = handle.read()
    assert item.sha256 == hashlib.sha256(content).hexdigest()
    joined = Path(default_storage.path(item.original.name))
    streams = json.loads(ffmpeg.run(ffmpeg.probe_argv(joined, ffprobe="ffprobe"), timeout_s=30).stdout)["streams"]
    assert sorted((s["codec_type"], s["codec_name"]) for s in streams) == [("audio", "aac"), ("video", "h264")]
