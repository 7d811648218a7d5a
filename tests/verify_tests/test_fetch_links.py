"""Submitting a link: the worker fetches through the egress guard with real yt-dlp, from a local server only."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import fetch_server
from tests.conftest import make_user, token_client, wait_for_analysis
from tests.fetch_server import FetchServer

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def server(shots_clip: Path) -> Iterator[FetchServer]:
    """The local server the egress guard lets through (VERIFY_FETCH_ALLOWED_ADDRESSES of the test run)."""
    served = FetchServer(port=int(os.environ["VERIFY_FETCH_SERVER_PORT"]))
    clip = shots_clip.read_bytes()
    served.routes["/media/clip.mp4"] = fetch_server.body(clip, "video/mp4")
    served.routes["/news/convoy"] = fetch_server.body(
        fetch_server.og_video_page(
            served.url("/media/clip.mp4"), title="Convoy on the bridge", published="2024-03-01T09:30:00+02:00"
        ),
        "text/html; charset=utf-8",
    )
    yield served
    served.close()


@pytest.fixture
def api(worker: Any) -> Any:
    return token_client(make_user("fetcher", "analyst"))


def link_submit(api: Any, url: str, **fields: Any) -> Any:
    fields.setdefault("title", "Convoy on the bridge")
    fields.setdefault("claim", "Filmed yesterday in the border village.")
    return api.post("/api/v1/media/", {"url": url, **fields}, format="multipart")


def test_link_with_og_video_is_fetched_analysed_and_keeps_its_post(
    api: Any, server: FetchServer, shots_clip: Path
) -> None:
    # when
    response = link_submit(api, server.url("/news/convoy"), claimed_date="2024-03-02")
    outcome = wait_for_analysis(api, response.json()["id"])

    # then
    assert response.status_code == 202, response.content
    assert response.json()["sha256"] is None
    assert response.json()["status_url"].endswith(f"/media/{response.json()['id']}/status/")
    detail = outcome.detail
    assert detail["state"] == "succeeded", detail["error"]
    assert detail["sha256"] == hashlib.sha256(shots_clip.read_bytes()).hexdigest()
    assert detail["size_bytes"] == shots_clip.stat().st_size
    assert "fetching" in [status["stage"] for status in outcome.statuses] or outcome.statuses[0]["state"] == "queued"
    post = detail["source_post"]
    assert post["platform"] == "web"
    assert post["submitted_url"] == server.url("/news/convoy")
    assert post["title"] == "Convoy on the bridge"
    assert post["text"] == "Residents filmed the convoy from a balcony."
    assert post["posted_at"] == "2024-03-01T07:30:00Z"
    assert post["posted_at_source"] == "page meta article:published_time"
    assert post["ytdlp_version"]
    assert post["extractor"] == "Generic"
    page = server.routes["/news/convoy"]
    assert post["page_sha256"] == hashlib.sha256(_served(page)).hexdigest()
    assert detail["metadata"]["video_codec"] == "h264"
    assert len(detail["keyframes"]) >= 4


def test_the_same_link_again_reuses_the_first_fetch(api: Any, server: FetchServer, shots_clip: Path) -> None:
    # given
    first = wait_for_analysis(api, link_submit(api, server.url("/news/convoy")).json()["id"]).detail
    assert first["state"] == "succeeded", first["error"]
    requests_before = dict(server.requests)

    # when
    second = wait_for_analysis(api, link_submit(api, server.url("/news/convoy")).json()["id"]).detail

    # then
    assert second["state"] == "succeeded", second["error"]
    assert dict(server.requests) == requests_before  # nothing fetched again
    assert second["sha256"] == first["sha256"]
    assert second["duplicate_of"] == first["id"]
    assert second["source_post"]["id"] == first["source_post"]["id"]


def test_a_redirect_to_an_address_not_allowed_is_refused_and_never_reached(api: Any, server: FetchServer) -> None:
    # given: a second local server the egress guard does not let through
    internal = FetchServer()
    internal.routes["/secret.mp4"] = fetch_server.body(b"\x00" * 64, "video/mp4")
    server.routes["/go"] = fetch_server.redirect(internal.url("/secret.mp4"))
    try:
        # when
        outcome = wait_for_analysis(api, link_submit(api, server.url("/go")).json()["id"])
    finally:
        internal.close()

    # then
    assert outcome.detail["state"] == "failed"
    assert outcome.detail["error"]["code"] == "fetch_refused_address", outcome.detail["error"]
    assert outcome.detail["error"]["message"] == (
        f"Refused to connect to 127.0.0.1 port {internal.port}: it is a loopback address, which fetches may not reach."
    )
    assert internal.requests.total() == 0
    assert outcome.detail["sha256"] is None


def _served(handler: Any) -> bytes:
    # The bytes a route answers with (fetch_server.body keeps them in its closure).
    return next(c.cell_contents for c in handler.__closure__ if isinstance(c.cell_contents, bytes))
