"""The languages a case's keyframe text is read in, changed after the case is opened: API, desk, history, re-reading."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.conftest import make_user, submit, token_client, wait_for_analysis
from tests.workflows_tests.test_keyframe_text import sign_clip  # noqa: F401 - a fixture
from workflows import services
from workflows.models import AuditEvent, Case, Status

REREAD_TIMEOUT_S = 90


def _case(owner: Any, **fields: Any) -> Case:
    return services.case_create(title="Street sign", claim="Filmed this morning.", created_by=owner, **fields)


def _history(case: Case, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(case=case, action=action).order_by("id"))


def test_patch_changes_the_languages_and_records_them_once(db: None) -> None:
    # given
    analyst = make_user("ana", "analyst")
    case = _case(analyst, ocr_languages="eng")
    api = token_client(analyst)
    # when
    changed = api.patch(f"/api/v1/cases/{case.pk}/", {"ocr_languages": "ukr, eng"}, format="json")
    again = api.patch(f"/api/v1/cases/{case.pk}/", {"ocr_languages": "ukr+eng"}, format="json")
    default = api.patch(f"/api/v1/cases/{case.pk}/", {"ocr_languages": ""}, format="json")
    # then
    assert changed.status_code == 200, changed.content
    assert changed.json()["ocr_languages"] == "ukr+eng" and again.json()["ocr_languages"] == "ukr+eng"
    assert default.status_code == 200 and default.json()["ocr_languages"] == ""
    events = _history(case, AuditEvent.Action.OCR_LANGUAGES_CHANGED)
    assert [(e.before, e.after, e.actor_id) for e in events] == [
        ({"ocr_languages": "eng"}, {"ocr_languages": "ukr+eng"}, analyst.pk),
        ({"ocr_languages": "ukr+eng"}, {"ocr_languages": ""}, analyst.pk),
    ]
    history = api.get(f"/api/v1/cases/{case.pk}/history/").json()["results"]
    assert [row["action"] for row in history].count("ocr_languages_changed") == 2


def test_patch_refuses_an_unknown_language_and_other_fields(db: None) -> None:
    analyst = make_user("ana", "analyst")
    case = _case(analyst, ocr_languages="eng")
    api = token_client(analyst)

    unknown = api.patch(f"/api/v1/cases/{case.pk}/", {"ocr_languages": "eng+klingon"}, format="json")
    fixed = api.patch(f"/api/v1/cases/{case.pk}/", {"ocr_languages": "ukr", "title": "Renamed"}, format="json")
    empty = api.patch(f"/api/v1/cases/{case.pk}/", {}, format="json")
    put = api.put(f"/api/v1/cases/{case.pk}/", {"ocr_languages": "ukr"}, format="json")

    assert unknown.status_code == 400
    assert unknown.json()["error"]["fields"]["ocr_languages"][0]["code"] == "ocr_language_missing"
    assert "klingon" in unknown.json()["error"]["fields"]["ocr_languages"][0]["message"]
    assert fixed.status_code == 400 and fixed.json()["error"]["fields"]["title"][0]["code"] == "not_editable"
    assert empty.status_code == 400 and empty.json()["error"]["fields"]["ocr_languages"][0]["code"] == "required"
    assert put.status_code == 405
    case.refresh_from_db()
    assert (case.ocr_languages, case.title) == ("eng", "Street sign")
    assert _history(case, AuditEvent.Action.OCR_LANGUAGES_CHANGED) == []


def test_who_may_change_the_languages(db: None) -> None:
    # given: a case of one analyst, another analyst, a reviewer, and a closed case
    owner = make_user("ana", "analyst")
    case = _case(owner)
    closed = _case(owner)
    Case.objects.filter(pk=closed.pk).update(status=Status.CLOSED)
    # when
    stranger = token_client(make_user("other", "analyst")).patch(
        f"/api/v1/cases/{case.pk}/", {"ocr_languages": "ara"}, format="json"
    )
    reviewer = token_client(make_user("rev", "reviewer")).patch(
        f"/api/v1/cases/{case.pk}/", {"ocr_languages": "ara"}, format="json"
    )
    on_closed = token_client(owner).patch(f"/api/v1/cases/{closed.pk}/", {"ocr_languages": "ara"}, format="json")
    reread_closed = token_client(owner).post(f"/api/v1/cases/{closed.pk}/ocr/")
    # then
    assert stranger.status_code == 404
    assert reviewer.status_code == 200 and reviewer.json()["ocr_languages"] == "ara"
    assert on_closed.status_code == 409 and on_closed.json()["error"]["code"] == "case_closed"
    assert reread_closed.status_code == 409 and reread_closed.json()["error"]["code"] == "case_closed"
    closed.refresh_from_db()
    assert closed.ocr_languages == ""


def test_reread_refused_when_ocr_is_off(db: None, settings: Any) -> None:
    settings.VERIFY_OCR_LANGUAGES = ""
    analyst = make_user("ana", "analyst")
    case = _case(analyst)

    response = token_client(analyst).post(f"/api/v1/cases/{case.pk}/ocr/")

    assert response.status_code == 400 and response.json()["error"]["code"] == "ocr_off"
    assert _history(case, AuditEvent.Action.KEYFRAME_TEXT_REREAD) == []


def test_desk_form_changes_the_languages_or_says_why_not(db: None) -> None:
    reviewer = make_user("rev", "reviewer", is_staff=True)
    case = _case(make_user("ana", "analyst"), ocr_languages="eng")
    client = Client()
    client.force_login(reviewer)
    url = f"/admin/workflows/case/{case.pk}/ocr-languages/"

    page = client.get(f"/admin/workflows/case/{case.pk}/change/").content.decode()
    refused = client.post(url, {"ocr_languages": "eng+klingon"}, follow=True).content.decode()
    changed = client.post(url, {"ocr_languages": "ara+eng"}, follow=True).content.decode()

    assert 'name="ocr_languages"' in page and 'value="eng"' in page
    assert "No Tesseract language data for klingon" in refused
    assert "Text in frames is now read in ara+eng." in changed
    assert "Text in frames read in</dt><dd>ara+eng</dd>" in changed
    case.refresh_from_db()
    assert case.ocr_languages == "ara+eng"
    assert [e.after for e in _history(case, AuditEvent.Action.OCR_LANGUAGES_CHANGED)] == [{"ocr_languages": "ara+eng"}]


def _keyframe_texts(api: Any, item_id: int) -> list[str]:
    keyframes = api.get(f"/api/v1/media/{item_id}/").json()["keyframes"]
    return [k["text"]["text"] for k in keyframes if k["text"]]


@pytest.mark.worker
def test_reread_in_new_languages_with_the_real_worker(worker: Any, sign_clip: Path) -> None:  # noqa: F811
    # given: a Cyrillic street sign analysed by the worker in English only
    analyst = make_user("ana", "analyst")
    api = token_client(analyst)
    submitted = submit(api, sign_clip, title="Street in the city centre", ocr_languages="eng")
    assert submitted.status_code == 202, submitted.content
    item_id, case_id = submitted.json()["id"], submitted.json()["case"]
    assert wait_for_analysis(api, item_id).detail["state"] == "succeeded"
    assert not any("Шевченка" in text for text in _keyframe_texts(api, item_id))
    assert api.get("/api/v1/search/", {"q": "Шевченка"}).json()["count"] == 0
    # when: the languages change to Ukrainian and the keyframes are read again
    patched = api.patch(f"/api/v1/cases/{case_id}/", {"ocr_languages": "ukr"}, format="json")
    queued = api.post(f"/api/v1/cases/{case_id}/ocr/")
    # then
    assert patched.status_code == 200, patched.content
    assert queued.status_code == 202, queued.content
    assert queued.json() == {"languages": "ukr", "media_items": [item_id]}
    deadline = time.monotonic() + REREAD_TIMEOUT_S
    while "вулиця Шевченка" not in _keyframe_texts(api, item_id):
        assert time.monotonic() < deadline, _keyframe_texts(api, item_id)
        time.sleep(0.2)
    keyframes = api.get(f"/api/v1/media/{item_id}/").json()["keyframes"]
    assert {k["text"]["languages"] for k in keyframes if k["text"]} == {"ukr"}
    found = api.get("/api/v1/search/", {"q": "Шевченка"}).json()
    assert [row["id"] for row in found["results"]] == [case_id]
    reread = _history(Case.objects.get(pk=case_id), AuditEvent.Action.KEYFRAME_TEXT_REREAD)
    assert [(e.actor_id, e.after) for e in reread] == [(analyst.pk, {"languages": "ukr", "media_items": [item_id]})]
