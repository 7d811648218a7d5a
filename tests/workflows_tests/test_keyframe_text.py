"""A keyframe showing a Cyrillic street sign: its text in the API and on the desk, and the search finds the case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ffmpeg
import pytest
from django.test import Client, override_settings

from tests.conftest import make_user, submit, token_client
from tests.verify_tests.test_ocr import FONT
from verify.analysis import analysis_run
from workflows.models import Case


@pytest.fixture
def sign_clip(tmp_path: Path) -> Path:
    path = tmp_path / "sign.mp4"
    (
        ffmpeg.input("testsrc2=s=640x360:r=25", f="lavfi", t=2)
        .filter("drawtext", fontfile=FONT, text="вулиця Шевченка", fontsize=40, fontcolor="black", box=1,
                boxcolor="white", boxborderw=12, x=60, y=80)
        .output(str(path), vcodec="libx264", pix_fmt="yuv420p", preset="veryfast")
        .overwrite_output()
        .run(quiet=True)
    )  # fmt: skip
    return path


@override_settings(VERIFY_OCR_LANGUAGES="")  # off by default; the case asks for its languages
def test_street_sign_text_in_api_desk_and_search(
    db: None, sign_clip: Path, django_capture_on_commit_callbacks: Any
) -> None:
    # given
    analyst = make_user("ana", "analyst", is_staff=True)
    api = token_client(analyst)
    response = submit(
        api, sign_clip, title="Street in the city centre", claim="Filmed this morning.", ocr_languages="eng+ukr"
    )
    assert response.status_code == 202, response.content
    # when
    with django_capture_on_commit_callbacks(execute=True):
        analysis_run(media_item_id=response.json()["id"])
    # then
    keyframes = api.get(f"/api/v1/media/{response.json()['id']}/").json()["keyframes"]
    texts = [k["text"] for k in keyframes if k["text"]]
    assert texts, keyframes
    assert texts[0]["text"] == "вулиця Шевченка"
    assert [w["text"] for w in texts[0]["words"]] == ["вулиця", "Шевченка"]
    assert texts[0]["words"][0]["confidence"] >= 70 and len(texts[0]["words"][0]["box"]) == 4
    case = Case.objects.get(pk=response.json()["case"])
    client = Client()
    client.force_login(analyst)
    html = client.get(f"/admin/workflows/case/{case.pk}/change/").content.decode()
    assert '<p class="kf-ocr">вулиця Шевченка</p>' in html
    assert "Text in frames read in</dt><dd>eng+ukr</dd>" in html
    assert "Google Lens" in html and "TinEye" in html and "never sends a frame anywhere" in html
    found = api.get("/api/v1/search/", {"q": "Шевченка"}).json()
    assert [row["id"] for row in found["results"]] == [case.pk]
    assert "<mark>Шевченка</mark>" in found["results"][0]["snippet"]


def test_case_ocr_languages_set_on_create_and_checked(db: None) -> None:
    api = token_client(make_user("ana", "analyst"))

    created = api.post("/api/v1/cases/", {"title": "Sign", "claim": "A sign.", "ocr_languages": "ara+eng"})
    refused = api.post("/api/v1/cases/", {"title": "Sign", "claim": "A sign.", "ocr_languages": "eng+klingon"})

    assert created.status_code == 201 and created.json()["ocr_languages"] == "ara+eng"
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"]["ocr_languages"][0]["code"] == "ocr_language_missing"
