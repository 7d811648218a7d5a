"""Fetch outcomes without a worker: re-fetch and removal, caps from the answer, yt-dlp's errors, time signals."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError, UnsupportedError

from tests import fetch_server
from tests.conftest import make_user
from tests.fetch_server import FetchServer
from verify.fetching.fetch import media_item_fetch
from verify.fetching.models import SourcePost
from verify.fetching.timing import post_timing_signals
from verify.fetching.ytdlp import info_caps_check, ytdlp_failure
from verify.intake import media_item_create_from_link
from verify.safeguards import AnalysisFailure
from workflows.services import case_create


@pytest.fixture
def server(shots_clip: Path) -> Iterator[FetchServer]:
    served = FetchServer(port=int(os.environ["VERIFY_FETCH_SERVER_PORT"]))
    served.routes["/media/post.mp4"] = fetch_server.body(shots_clip.read_bytes(), "video/mp4")
    yield served
    served.close()


def _fetch(url: str, *, refetch: bool = False) -> tuple[Any, AnalysisFailure | None]:
    user = make_user(f"refetcher-{SourcePost.objects.count()}", "analyst")
    case = case_create(title="Convoy", claim="Filmed yesterday.", created_by=user)
    item = media_item_create_from_link(case=case, url=url, uploaded_by=user, refetch=refetch)
    try:
        media_item_fetch(item)
    except AnalysisFailure as failure:
        return item, failure
    item.refresh_from_db()
    return item, None


@pytest.mark.django_db
def test_refetch_of_the_same_url_fetches_again_and_keeps_a_new_post(server: FetchServer) -> None:
    first, _ = _fetch(server.url("/media/post.mp4"))
    requests_first = server.requests["/media/post.mp4"]

    again, failure = _fetch(server.url("/media/post.mp4"), refetch=True)

    assert failure is None
    assert server.requests["/media/post.mp4"] == 2 * requests_first  # fetched again, as the first time
    assert again.source_post_id != first.source_post_id
    assert again.sha256 == first.sha256 and again.duplicate_of_id == first.pk
    assert SourcePost.objects.get(pk=again.source_post_id).state == "fetched"


@pytest.mark.django_db
def test_refetch_that_finds_the_post_gone_marks_the_earlier_fetch_removed(server: FetchServer) -> None:
    # given
    first, _ = _fetch(server.url("/media/post.mp4"))
    del server.routes["/media/post.mp4"]
    before = datetime.now(UTC)

    # when
    again, failure = _fetch(server.url("/media/post.mp4"), refetch=True)

    # then
    assert failure is not None and failure.code == "source_unavailable"
    earlier = SourcePost.objects.get(pk=first.source_post_id)
    assert earlier.removed_at is not None and earlier.removed_at >= before
    assert earlier.removed_message == failure.message
    assert SourcePost.objects.get(pk=again.source_post_id).state == "failed"
    first.refresh_from_db()
    assert first.sha256 is not None  # the original fetched then stays


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ({"duration": 7201}, "too_long"),
        ({"is_live": True}, "live_stream"),
        ({"live_status": "is_upcoming"}, "live_stream"),
        ({"formats": [{"format_id": "a", "vcodec": "none", "filesize": 60}, {"format_id": "v", "acodec": "none",
          "vcodec": "avc1", "filesize": 50}]}, "too_large"),  # the two streams to be joined, counted together
    ],
)  # fmt: skip
def test_info_caps_check_refuses_from_the_answer_before_downloading(entry: dict[str, Any], code: str) -> None:
    with pytest.raises(AnalysisFailure) as refused:
        info_caps_check({"_type": "playlist", "entries": [{"duration": 5}, entry]}, max_bytes=100, max_duration_s=7200)

    assert refused.value.code == code


def test_info_caps_check_lets_a_short_recorded_video_through() -> None:
    info_caps_check({"duration": 7200, "live_status": "was_live", "filesize": 100}, max_bytes=100, max_duration_s=7200)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (DownloadError("ERROR: [youtube] abc: Private video. Sign in if you've been granted access"), "source_private"),
        (DownloadError("ERROR: [instagram] abc: This content is only available for registered users who follow"
                       " this account. You need to log in"), "source_private"),
        (DownloadError("ERROR: geo", exc_info=(GeoRestrictedError, GeoRestrictedError("Not in your country"), None)),
         "source_geo_blocked"),
        (DownloadError("ERROR: [generic] Unsupported URL: https://example.org/",
                       exc_info=(UnsupportedError, UnsupportedError("https://example.org/"), None)), "unsupported_url"),
        (DownloadError("ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader"),
         "source_unavailable"),
        (DownloadError("ERROR: [youtube] abc: This live event will begin in 3 hours."), "live_stream"),
        (ExtractorError("Unable to extract video data; please report this issue"), "extractor_failed"),
        (KeyError("player_response"), "extractor_failed"),
    ],
)  # fmt: skip
def test_ytdlp_failure_maps_the_message_or_class_to_a_code(error: BaseException, code: str) -> None:
    failure = ytdlp_failure(error)

    assert failure.code == code
    assert not failure.message.startswith("ERROR:") and "ERROR: " not in failure.message[:20]


def test_timing_says_filmed_years_before_posted_and_posted_before_the_claimed_date() -> None:
    signals = post_timing_signals(
        captured=datetime(2021, 5, 1, 6, 0, tzinfo=UTC),
        captured_source="format tag creation_time",
        posted_at=datetime(2024, 3, 1, 7, 30, tzinfo=UTC),
        posted_at_source="page meta article:published_time",
        claimed_date=date(2024, 3, 2),
    )

    assert [(s["code"], s["title"]) for s in signals] == [
        ("filmed_long_before_posted", "Filmed 2 years before it was posted"),
        ("posted_before_claimed_date", "Posted 1 days before the claimed date"),
        ("filmed_before_claimed_date", "Filmed 2 years before the claimed date"),
    ]
    assert signals[0]["evidence"] == (
        "Capture time 2021-05-01 (format tag creation_time); posted 2024-03-01 07:30 UTC "
        "(page meta article:published_time)."
    )


def test_timing_gives_no_signal_within_a_day_or_without_a_value() -> None:
    posted = datetime(2024, 3, 1, 23, 0, tzinfo=UTC)
    assert post_timing_signals(captured=date(2024, 2, 29), captured_source="exif", posted_at=posted,
                               posted_at_source="yt-dlp timestamp", claimed_date=date(2024, 3, 1)) == []  # fmt: skip
    assert post_timing_signals(captured=None, captured_source="", posted_at=None, posted_at_source="",
                               claimed_date=date(2024, 3, 1)) == []  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["https://t.me/c/1234567890/89", "https://t.me/+AbCdEf123", "https://t.me/joinchat/AbC"]
)
def test_a_private_telegram_link_fails_naming_the_credentials_it_needs(url: str) -> None:
    item, failure = _fetch(url)

    assert failure is not None and failure.code == "source_private"
    assert failure.message.startswith("The link is to a private Telegram channel or group.")
    assert "VERIFY_TELEGRAM_API_ID and VERIFY_TELEGRAM_API_HASH" in failure.message
    assert SourcePost.objects.get(pk=item.source_post_id).state == "failed"
