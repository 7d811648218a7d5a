"""Evidence files: no downloads in a reviewer's name on another site's behalf, and never cached."""

import io
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image
from rest_framework.test import APIClient

from tests.conftest import make_user, submit, token_client
from verify.models import Keyframe, MediaItem
from workflows.models import AuditEvent


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "gray").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def evidence(db: None, shots_clip: Any) -> dict[str, Any]:
    """A submitted item with a stored keyframe and contact sheet, and a reviewer logged in to the desk."""
    analyst = make_user("ana", "analyst")
    item = MediaItem.objects.get(pk=submit(token_client(analyst), shots_clip).json()["id"])
    image = default_storage.save(f"derived/test/{item.pk}/frame.jpg", ContentFile(jpeg_bytes()))
    keyframe = Keyframe.objects.create(media_item=item, timestamp_s=0.0, image=image, width=8, height=8)
    sheet = default_storage.save(f"derived/test/{item.pk}/sheet.jpg", ContentFile(jpeg_bytes()))
    MediaItem.objects.filter(pk=item.pk).update(contact_sheet=sheet)
    reviewer = make_user("rev", "reviewer")
    browser = APIClient()
    browser.force_login(reviewer)
    return {
        "reviewer": reviewer,
        "browser": browser,
        "urls": [
            f"/api/v1/media/{item.pk}/original/",
            f"/api/v1/media/{item.pk}/contact-sheet/",
            f"/api/v1/keyframes/{keyframe.pk}/image/",
        ],
        "original": f"/api/v1/media/{item.pk}/original/",
    }


def downloads() -> int:
    return AuditEvent.objects.filter(action="original_downloaded").count()


CROSS_SITE = [
    {"HTTP_SEC_FETCH_SITE": "cross-site"},
    {"HTTP_SEC_FETCH_SITE": "same-site"},
    {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_REFERER": "http://testserver/admin/"},
    {"HTTP_ORIGIN": "https://evil.example"},
    {"HTTP_ORIGIN": "null"},
    {"HTTP_REFERER": "https://evil.example/page.html"},
]


@pytest.mark.django_db
@pytest.mark.parametrize("headers", CROSS_SITE)
def test_session_download_from_another_site_is_refused_and_not_recorded(evidence, headers):
    for url in evidence["urls"]:
        # when
        response = evidence["browser"].get(url, **headers)

        # then
        assert response.status_code == 403, (url, headers)
        error = response.json()["error"]
        assert error["code"] == "cross_site_request"
        assert "another site" in error["message"]
    assert downloads() == 0


SAME_SITE = [
    {"HTTP_SEC_FETCH_SITE": "same-origin"},
    {"HTTP_SEC_FETCH_SITE": "none"},
    {"HTTP_REFERER": "http://testserver/admin/workflows/case/1/change/"},
    {"HTTP_ORIGIN": "http://testserver"},
    {},
]


@pytest.mark.django_db
@pytest.mark.parametrize("headers", SAME_SITE)
def test_session_download_from_the_service_itself_is_served(evidence, headers):
    for url in evidence["urls"]:
        response = evidence["browser"].get(url, **headers)

        assert response.status_code == 200, (url, headers)
        assert response.getvalue()
    assert downloads() == 1


@pytest.mark.django_db
def test_token_clients_are_not_affected_by_the_site_headers(evidence):
    client = token_client(evidence["reviewer"])

    for url in evidence["urls"]:
        response = client.get(url, HTTP_SEC_FETCH_SITE="cross-site", HTTP_ORIGIN="https://elsewhere.example")

        assert response.status_code == 200, url
        assert response.getvalue()
    assert downloads() == 1


@pytest.mark.django_db
def test_evidence_files_are_never_stored_in_caches(evidence):
    client = token_client(evidence["reviewer"])

    for url in evidence["urls"]:
        response = client.get(url)

        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store", url
        assert response.getvalue()
