"""Requests past Django's field limits get a clear 400 or 413 in the error shape, never a 500."""

import logging
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.conftest import make_user, token_client
from verify.models import MediaItem
from workflows import services
from workflows.models import Case, Note

BIG = "x" * 3_000_000
MANY_FIELDS = {f"field{n}": "x" for n in range(1200)}


@pytest.fixture
def lead(db: None) -> Any:
    return make_user("lea", "lead")


@pytest.fixture
def case(lead: Any) -> Case:
    return services.case_create(title="Claim", claim="Claim", created_by=lead)


def assert_clean_refusal(response: Any, status_code: int, code: str, caplog: Any) -> None:
    assert response.status_code == status_code, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.django_db
def test_form_with_too_many_fields_is_refused_with_400(lead, case, caplog):
    client = token_client(lead)

    multipart = client.post("/api/v1/media/", MANY_FIELDS, format="multipart")
    urlencoded = client.post(
        f"/api/v1/cases/{case.pk}/notes/", urlencode(MANY_FIELDS), content_type="application/x-www-form-urlencoded"
    )

    assert_clean_refusal(multipart, 400, "too_many_fields", caplog)
    assert_clean_refusal(urlencoded, 400, "too_many_fields", caplog)
    assert MediaItem.objects.count() == 0 and Note.objects.count() == 0


@pytest.mark.django_db
def test_upload_with_a_huge_title_is_refused_with_413(lead, shots_clip, caplog):
    client = token_client(lead)

    with shots_clip.open("rb") as handle:
        response = client.post("/api/v1/media/", {"file": handle, "title": BIG, "claim": "c"}, format="multipart")

    assert_clean_refusal(response, 413, "request_too_large", caplog)
    assert "MB" in response.json()["error"]["message"]
    assert MediaItem.objects.count() == 0 and Case.objects.count() == 0


@pytest.mark.django_db
def test_json_note_with_a_huge_body_is_refused_with_413(lead, case, caplog):
    response = token_client(lead).post(f"/api/v1/cases/{case.pk}/notes/", {"body": BIG}, format="json")

    assert_clean_refusal(response, 413, "request_too_large", caplog)
    assert Note.objects.count() == 0


@pytest.fixture
def desk(lead: Any) -> Client:
    get_user_model().objects.filter(pk=lead.pk).update(is_staff=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form", "status_code", "words"), [(MANY_FIELDS, 400, "more than"), ({"body": BIG}, 413, "larger than")]
)
def test_desk_form_past_the_limits_is_refused_without_an_error_in_the_log(desk, case, caplog, form, status_code, words):
    response = desk.post(reverse("admin:workflows_case_note", args=[case.pk]), form)

    assert response.status_code == status_code
    assert words in response.content.decode()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert Note.objects.count() == 0
