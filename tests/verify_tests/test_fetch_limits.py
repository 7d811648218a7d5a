"""The fetching stage against a misbehaving local server: real yt-dlp through the real egress proxy, in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import fetch_server
from tests.conftest import make_user
from tests.fetch_server import FetchServer
from verify.fetching.fetch import media_item_fetch
from verify.fetching.models import SourcePost
from verify.intake import media_item_create_from_link
from verify.safeguards import AnalysisFailure
from workflows.services import case_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def server(shots_clip: Path) -> Iterator[FetchServer]:
    served = FetchServer(port=int(os.environ["VERIFY_FETCH_SERVER_PORT"]))
    served.routes["/huge.mp4"] = fetch_server.announced(10 * 1024**3)
    served.routes["/drip.mp4"] = fetch_server.drip(shots_clip.read_bytes(), pause_s=4)
    served.routes["/tg/border_watch/4021"] = fetch_server.body(
        fetch_server.telegram_embed_page(
            channel="border_watch",
            post_id=4021,
            video_url=served.url("/media/tg.mp4"),
            posted="2021-05-04T08:15:00+00:00",
            views="15304",
        ),
        "text/html; charset=utf-8",
    )
    served.routes["/media/tg.mp4"] = fetch_server.body(shots_clip.read_bytes(), "video/mp4")
    yield served
    served.close()


def _fetch(url: str) -> tuple[Any, AnalysisFailure | None]:
    user = make_user("linker", "analyst")
    case = case_create(title="Convoy", claim="Filmed yesterday.", created_by=user)
    item = media_item_create_from_link(case=case, url=url, uploaded_by=user)
    try:
        media_item_fetch(item)
    except AnalysisFailure as failure:
        return item, failure
    item.refresh_from_db()
    return item, None


def test_fetch_refuses_a_ten_gigabyte_answer_on_its_header(server: FetchServer) -> None:
    # The server sends the header and never a byte of the body: an answer naming the announced
    # size (not a stall or a short read) shows the refusal came from the header alone.
    item, failure = _fetch(server.url("/huge.mp4"))

    assert failure is not None
    assert failure.code == "too_large"
    assert failure.message.startswith("The source announced 10,737,418,240 bytes; the most fetched is")


def test_fetch_stops_a_source_that_goes_quiet(server: FetchServer, settings: Any) -> None:
    settings.VERIFY_FETCH_STALL_TIMEOUT_S = 1.0

    item, failure = _fetch(server.url("/drip.mp4"))

    assert failure is not None
    assert failure.code == "fetch_stalled"
    assert failure.message == "The source sent nothing for 1 s; the fetch was stopped."
    assert SourcePost.objects.get(pk=item.source_post_id).state == "failed"


def test_fetch_of_a_missing_page_is_source_unavailable(server: FetchServer) -> None:
    item, failure = _fetch(server.url("/gone"))

    assert failure is not None
    assert failure.code == "source_unavailable"
    assert "404" in failure.message
    assert server.requests["/gone"] >= 1


def test_fetch_of_a_telegram_style_embed_page_keeps_the_post(server: FetchServer, shots_clip: Path) -> None:
    item, failure = _fetch(server.url("/tg/border_watch/4021"))

    assert failure is None
    assert item.size_bytes == shots_clip.stat().st_size
    post = SourcePost.objects.get(pk=item.source_post_id)
    assert post.platform == "telegram"
    assert post.canonical_url == "https://t.me/border_watch/4021"
    assert (post.author_name, post.author_id, post.author_url) == (
        "Border Watch",
        "border_watch",
        "https://t.me/border_watch",
    )
    assert post.posted_at.isoformat() == "2021-05-04T08:15:00+00:00"
    assert post.posted_at_source == "Telegram embed page: <time datetime>"
    assert post.text == "Soldiers in the village this morning"
    assert post.view_count == 15304
    assert (post.forwarded_from, post.forwarded_from_url) == ("Origin Channel", "https://t.me/origin_channel/7")
    assert post.page_sha256 and post.ytdlp_version
