"""The REST API as a script sees it: status codes, the error shape, and what gets stored."""

import hashlib
import io
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.conftest import make_user, submit, token_client
from verify.intake import escape_client_filename
from verify.models import MediaItem
from workflows.models import Case


def stored_originals(settings) -> set[Path]:
    root = Path(settings.MEDIA_ROOT) / "originals"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def assert_error(response, status_code: int, code: str) -> dict:
    assert response.status_code == status_code, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert "Traceback" not in response.content.decode()
    return error


@pytest.mark.django_db
def test_api_requires_a_token():
    response = APIClient().get("/api/v1/media/")

    assert_error(response, 401, "not_authenticated")


@pytest.mark.django_db
def test_api_rejects_a_wrong_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    assert_error(client.get("/api/v1/cases/"), 401, "authentication_failed")


@pytest.mark.django_db
def test_submit_empty_file_is_rejected_and_nothing_is_stored(api, tmp_path, settings):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    before = stored_originals(settings)

    error = assert_error(submit(api, empty), 400, "invalid")

    assert error["fields"]["file"][0]["code"] == "empty"
    assert MediaItem.objects.count() == 0
    assert Case.objects.count() == 0
    assert stored_originals(settings) == before


@pytest.mark.django_db
def test_submit_without_a_file_is_rejected(api):
    response = api.post("/api/v1/media/", {"title": "t", "claim": "c"}, format="multipart")

    error = assert_error(response, 400, "invalid")
    assert error["fields"]["file"][0]["code"] == "required"
    assert Case.objects.count() == 0


@pytest.mark.django_db
def test_submit_without_claim_or_case_is_rejected(api, shots_clip, settings):
    before = stored_originals(settings)
    with shots_clip.open("rb") as handle:
        response = api.post("/api/v1/media/", {"file": handle}, format="multipart")

    error = assert_error(response, 400, "invalid")
    assert set(error["fields"]) == {"title", "claim"}
    assert MediaItem.objects.count() == 0 and Case.objects.count() == 0
    assert stored_originals(settings) == before


@pytest.mark.django_db
def test_submit_to_an_unknown_case_is_rejected(api, shots_clip):
    error = assert_error(submit(api, shots_clip, case=999999), 400, "invalid")

    assert error["fields"]["case"][0]["code"] == "does_not_exist"


@pytest.mark.django_db
def test_submit_rejects_an_invalid_claimed_date_and_url(api, shots_clip):
    error = assert_error(submit(api, shots_clip, claimed_date="yesterday", source_url="not a url"), 400, "invalid")

    assert set(error["fields"]) == {"claimed_date", "source_url"}


@pytest.mark.django_db
def test_submit_over_the_size_limit_answers_413_and_stores_nothing(api, settings, tmp_path):
    settings.VERIFY_MAX_UPLOAD_BYTES = 100_000
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 300_000)
    before = stored_originals(settings)

    assert_error(submit(api, big), 413, "upload_too_large")

    assert MediaItem.objects.count() == 0 and Case.objects.count() == 0
    assert stored_originals(settings) == before


@pytest.mark.django_db(transaction=True)
def test_submit_opens_a_case_and_stores_the_original_under_a_server_name(api, shots_clip, settings):
    # when
    response = submit(
        api,
        shots_clip,
        title="Soldiers in a border village",
        claim="Posted on Telegram as filmed yesterday",
        source_url="https://t.me/somechannel/1234",
        claimed_location="Border village",
        claimed_date="2024-03-02",
    )
    # then
    assert response.status_code == 202
    body = response.json()
    sha256 = hashlib.sha256(shots_clip.read_bytes()).hexdigest()
    assert body["sha256"] == sha256
    case = Case.objects.get(pk=body["case"])
    assert (case.title, case.source_url, str(case.claimed_date)) == (
        "Soldiers in a border village",
        "https://t.me/somechannel/1234",
        "2024-03-02",
    )
    assert case.status == Case.Status.NEW
    item = MediaItem.objects.get(pk=body["id"])
    assert item.original.name == f"originals/{sha256[:2]}/{sha256}"
    assert Path(item.original.path).read_bytes() == shots_clip.read_bytes()
    assert body["original_filename"] == "shots.mp4"
    assert body["mime_type"] == "video/mp4"


@pytest.mark.django_db
def test_submit_keeps_a_hostile_file_name_only_as_metadata(api, settings):
    upload = io.BytesIO(b"\x00\x00\x00\x18ftypmp42" + b"\0" * 64)
    upload.name = "../../etc/-rf \u202egpj.mp4"

    response = api.post("/api/v1/media/", {"file": upload, "title": "t", "claim": "c"}, format="multipart")

    assert response.status_code == 202
    body = response.json()
    assert "/" not in body["original_filename"] and "\u202e" not in body["original_filename"]
    item = MediaItem.objects.get(pk=body["id"])
    assert item.original.name == f"originals/{body['sha256'][:2]}/{body['sha256']}"


def test_escape_client_filename_writes_control_and_bidi_characters_as_escapes():
    assert escape_client_filename("clip\u202egpj.exe\r\n\x00") == "clip\\u202egpj.exe\\u000d\\u000a\\u0000"
    assert len(escape_client_filename("a" * 1000)) == 255


@pytest.mark.django_db
def test_submit_same_bytes_twice_stores_them_once_and_says_so(api, shots_clip, settings):
    first = submit(api, shots_clip).json()

    second = submit(api, shots_clip, title="Same clip, new caption").json()

    assert second["id"] != first["id"]
    assert second["duplicate_of"] == first["id"]
    assert first["duplicate_of"] is None
    copies = [p for p in stored_originals(settings) if p.name == first["sha256"]]
    assert len(copies) == 1


@pytest.mark.django_db
def test_cases_can_be_opened_listed_filtered_and_read(api):
    created = api.post("/api/v1/cases/", {"title": "Night strike", "claim": "Shows a strike on 3 May"})
    assert created.status_code == 201
    api.post("/api/v1/cases/", {"title": "Convoy", "claim": "A convoy near the border"})

    listing = api.get("/api/v1/cases/", {"status": "new"})

    assert listing.status_code == 200
    assert listing.json()["count"] == 2
    assert {c["title"] for c in listing.json()["results"]} == {"Night strike", "Convoy"}
    assert api.get("/api/v1/cases/", {"status": "ready_for_review"}).json()["count"] == 0
    detail = api.get(f"/api/v1/cases/{created.json()['id']}/").json()
    assert detail["created_by"] == "analyst"
    assert detail["media_items"] == []


@pytest.mark.django_db
def test_case_creation_validates_its_fields(api):
    error = assert_error(api.post("/api/v1/cases/", {"title": ""}), 400, "invalid")

    assert set(error["fields"]) == {"title", "claim"}


@pytest.mark.django_db
def test_media_list_is_paginated_and_filterable_by_state(api, shots_clip):
    ids = [submit(api, shots_clip).json()["id"] for _ in range(3)]
    MediaItem.objects.filter(pk=ids[0]).update(state=MediaItem.State.FAILED)

    page = api.get("/api/v1/media/", {"page_size": 2}).json()
    queued = api.get("/api/v1/media/", {"state": "queued"}).json()

    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert queued["count"] == 2
    assert_error(api.get("/api/v1/media/", {"state": "exploded"}), 400, "invalid")


@pytest.mark.django_db
def test_unknown_media_answers_404_in_the_error_shape(api):
    assert_error(api.get("/api/v1/media/424242/"), 404, "not_found")
    assert_error(api.get("/api/v1/media/424242/status/"), 404, "not_found")
    assert_error(api.get("/api/v1/keyframes/424242/image/"), 404, "not_found")


@pytest.mark.django_db
def test_files_are_served_only_to_authenticated_users(api, shots_clip):
    item = submit(api, shots_clip).json()

    anonymous = APIClient()

    assert_error(anonymous.get(f"/api/v1/media/{item['id']}/original/"), 401, "not_authenticated")
    assert_error(anonymous.get(f"/api/v1/media/{item['id']}/contact-sheet/"), 401, "not_authenticated")
    original = api.get(f"/api/v1/media/{item['id']}/original/")
    assert original.status_code == 200
    assert original["Content-Disposition"].startswith("attachment")
    assert hashlib.sha256(b"".join(original.streaming_content)).hexdigest() == item["sha256"]


@pytest.mark.django_db
def test_status_endpoint_is_small(api, shots_clip):
    item = submit(api, shots_clip).json()

    status = api.get(f"/api/v1/media/{item['id']}/status/").json()

    assert set(status) == {
        "id", "state", "stage", "progress_percent", "fetched_bytes", "fetch_total_bytes", "error", "detail",
        "attempts", "updated_at",
    }  # fmt: skip
    assert status["state"] == "queued" and status["error"] is None


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_published(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = api.get("/api/v1/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/media/", "/api/v1/media/{id}/status/", "/api/v1/cases/{id}/"} <= set(paths)
    assert "202" in paths["/api/v1/media/"]["post"]["responses"]
    assert docs.status_code == 200


@pytest.mark.django_db
def test_create_api_user_prints_a_working_token(capsys):
    # given the role groups `migrate` creates (a transactional test run before this one empties the tables)
    Group.objects.get_or_create(name="analyst")

    call_command("create_api_user", "scripted")

    token = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/cases/").status_code == 200


@pytest.mark.django_db
def test_create_api_user_returns_the_same_token_for_an_existing_user(capsys):
    user = make_user("existing")

    call_command("create_api_user", "existing")

    assert capsys.readouterr().out.strip() == user.auth_token.key
    assert token_client(user).get("/api/v1/media/").status_code == 200
