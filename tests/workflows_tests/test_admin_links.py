"""The desk's "Add from link" form and the post panel beside each media item fetched from a link."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import make_user
from verify.fetching.models import SourcePost
from verify.models import MediaItem
from workflows.services import case_create

pytestmark = pytest.mark.django_db


def test_add_from_link_queues_a_fetch_and_the_page_shows_the_post() -> None:
    # given
    analyst = make_user("ana", "analyst", is_staff=True)
    case = case_create(title="Convoy", claim="Filmed yesterday.", created_by=analyst)
    client = Client()
    client.force_login(analyst)

    # when
    response = client.post(
        reverse("admin:workflows_case_link", args=[case.pk]), {"url": "https://t.me/border_watch/4021"}
    )

    # then
    assert response.status_code == 302
    item = MediaItem.objects.get(case=case)
    post = item.source_post
    assert post is not None and post.submitted_url == "https://t.me/border_watch/4021" and not post.refetch
    SourcePost.objects.filter(pk=post.pk).update(
        state="fetched", platform="telegram", author_name="Border Watch", author_url="https://t.me/border_watch",
        posted_at=datetime(2021, 5, 4, 8, 15, tzinfo=UTC), posted_at_source="Telegram embed page: <time datetime>",
        text="Soldiers in the village", view_count=15304, page_sha256="ab" * 32, ytdlp_version="2026.10.26",
        extractor="TelegramEmbed", fetched_at=datetime(2024, 3, 2, tzinfo=UTC),
    )  # fmt: skip
    page = client.get(reverse("admin:workflows_case_change", args=[case.pk])).content.decode()
    assert 'action="' + reverse("admin:workflows_case_link", args=[case.pk]) + '"' in page
    assert '<a href="https://t.me/border_watch" rel="noopener noreferrer" target="_blank">Border Watch</a>' in page
    assert "(from Telegram embed page: &lt;time datetime&gt;)" in page
    assert "15304 views" in page and "ab" * 32 in page and "yt-dlp 2026.10.26 (TelegramEmbed)" in page


def test_add_from_link_refuses_a_value_that_is_not_a_link() -> None:
    analyst = make_user("ana", "analyst", is_staff=True)
    case = case_create(title="Convoy", claim="Filmed yesterday.", created_by=analyst)
    client = Client()
    client.force_login(analyst)

    response = client.post(reverse("admin:workflows_case_link", args=[case.pk]), {"url": "not a link"}, follow=True)

    assert "Enter a valid URL." in response.content.decode()
    assert not MediaItem.objects.filter(case=case).exists()
