"""The sun in the API and on the desk: for a case's place and date, and for any place and time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import make_user, token_client
from verify.models import MediaItem, MediaMetadata
from workflows import services
from workflows.models import Case, ChecklistItem

KYIV = (50.4501, 30.5234)


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "analyst": make_user("ana", "analyst", is_staff=True),
        "other": make_user("other", "analyst", is_staff=True),
        "reviewer": make_user("rev", "reviewer", is_staff=True),
    }


def _case(owner: Any, **fields: Any) -> Case:
    return services.case_create(title="Convoy", claim="Filmed in Kyiv", created_by=owner, **fields)


def _located(case: Case, latitude: float, longitude: float) -> Case:
    ChecklistItem.objects.filter(case=case, key=ChecklistItem.Key.LOCATION).update(
        latitude=latitude, longitude=longitude
    )
    return case


def _with_capture(case: Case, owner: Any, *, at: datetime, gps: tuple[float, float] | None = None) -> MediaItem:
    item = MediaItem.objects.create(
        case=case, original="originals/x.mp4", size_bytes=1, sha256="ab" * 32, uploaded_by=owner,
        state=MediaItem.State.SUCCEEDED,
    )  # fmt: skip
    MediaMetadata.objects.create(
        media_item=item, raw={}, creation_time=at, creation_time_source="format.tags.creation_time",
        latitude=gps[0] if gps else None, longitude=gps[1] if gps else None,
    )  # fmt: skip
    return item


def test_api_sun_for_any_place_and_time(people: dict[str, Any]) -> None:
    api = token_client(people["analyst"])

    response = api.get(
        "/api/v1/sun/", {"latitude": -33.8688, "longitude": 151.2093, "date": "2024-12-21", "time": "12:53"}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["place"]["zone"] == "Australia/Sydney"
    assert body["place"]["zone_source"] == "from the coordinates"
    assert body["position"]["at"] == "2024-12-21T12:53:00+11:00"
    assert body["position"]["elevation_deg"] == pytest.approx(79.57, abs=0.15)
    assert body["position"]["shadow_direction"] == "S"
    assert body["day"]["sunrise"].startswith("2024-12-21T05:4")
    assert body["day"]["polar"] is None
    assert len(body["day"]["samples"]) == 24 * 6 + 1


def test_api_sun_says_polar_night_and_refuses_bad_input(people: dict[str, Any]) -> None:
    api = token_client(people["analyst"])

    polar = api.get("/api/v1/sun/", {"latitude": 78.2232, "longitude": 15.6267, "date": "2024-12-21"})
    bad_zone = api.get("/api/v1/sun/", {"latitude": 50, "longitude": 30, "date": "2024-03-02", "zone": "Mars/Base"})
    skipped = api.get("/api/v1/sun/", {"latitude": 51.5, "longitude": -0.12, "date": "2024-03-31", "time": "01:30"})
    outside = api.get("/api/v1/sun/", {"latitude": 95, "longitude": 30, "date": "2024-03-02"})

    assert polar.status_code == 200
    assert (polar.json()["day"]["polar"], polar.json()["position"]) == ("night", None)
    assert bad_zone.status_code == 400 and "time zone" in str(bad_zone.json())
    assert skipped.status_code == 400 and "did not exist" in str(skipped.json())
    assert outside.status_code == 400


def test_api_case_sun_uses_the_checklist_place_and_the_capture_time(people: dict[str, Any]) -> None:
    case = _located(_case(people["analyst"], claimed_date=date(2024, 3, 2)), *KYIV)
    _with_capture(case, people["analyst"], at=datetime(2024, 3, 2, 8, 15, tzinfo=UTC))

    body = token_client(people["analyst"]).get(f"/api/v1/cases/{case.pk}/sun/").json()

    assert body["place"]["source"] == "the checklist's location"
    assert body["place"]["zone"] == "Europe/Kyiv"
    assert body["day_source"] == "the claimed date"
    assert body["day"]["date"] == "2024-03-02"
    [capture] = body["capture_times"]
    assert capture["at"] == "2024-03-02T10:15:00+02:00"
    assert 140 < capture["azimuth_deg"] < 170 and 20 < capture["elevation_deg"] < 35
    assert capture["shadow_length_per_m"] > 1


def test_api_case_sun_falls_back_to_metadata_gps_and_hides_other_cases(people: dict[str, Any]) -> None:
    case = _case(people["analyst"])
    item = _with_capture(case, people["analyst"], at=datetime(2024, 6, 1, 9, 0, tzinfo=UTC), gps=(-22.9, -43.2))

    mine = token_client(people["analyst"]).get(f"/api/v1/cases/{case.pk}/sun/")
    theirs = token_client(people["other"]).get(f"/api/v1/cases/{case.pk}/sun/")
    nothing = token_client(people["other"]).get(f"/api/v1/cases/{_case(people['other']).pk}/sun/")

    assert mine.json()["place"]["source"] == f"GPS in the metadata of media #{item.pk}"
    assert mine.json()["place"]["zone"] == "America/Sao_Paulo"
    assert mine.json()["day_source"] == f"the capture date of media #{item.pk}"
    assert theirs.status_code == 404
    assert nothing.json()["place"] is None and "checklist" in nothing.json()["missing"]


def test_desk_case_page_shows_the_sun_and_the_day_chart(people: dict[str, Any]) -> None:
    case = _located(_case(people["analyst"], claimed_date=date(2024, 3, 2)), *KYIV)
    _with_capture(case, people["analyst"], at=datetime(2024, 3, 2, 8, 15, tzinfo=UTC))
    client = Client()
    client.force_login(people["reviewer"])

    html = client.get(reverse("admin:workflows_case_change", args=[case.pk])).content.decode()

    assert 'id="sun"' in html
    assert "Media #" in html and "azimuth <strong>" in html and "m per metre of height" in html
    assert '<svg class="sun-chart"' in html and "sun-elevation" in html
    assert "Sunrise" in html and "Shadows point north" in html
    assert "Europe/Kyiv" in html


def test_desk_sun_form_answers_any_place_without_saving(people: dict[str, Any]) -> None:
    client = Client()
    client.force_login(people["reviewer"])
    cases_before = Case.objects.count()

    html = client.get(
        reverse("admin:workflows_case_sun"),
        {"latitude": "-77.8463", "longitude": "166.6681", "date": "2024-12-21", "time": "03:00"},
    ).content.decode()

    assert "Polar day: the sun does not set on this date." in html
    assert "Antarctica/McMurdo" in html and "azimuth <strong>" in html
    assert Case.objects.count() == cases_before
