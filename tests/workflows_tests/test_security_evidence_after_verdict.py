"""Media submitted after a verdict: a closed case refuses it, a proposed verdict goes back to review."""

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.conftest import make_user, submit, token_client
from verify.models import MediaItem
from workflows import services
from workflows.models import AuditEvent, Case


def stored_originals(settings: Any) -> set[Path]:
    root = Path(settings.MEDIA_ROOT) / "originals"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {"analyst": make_user("ana", "analyst"), "reviewer": make_user("rev", "reviewer")}


def case_in(status: str, owner: Any, proposer: Any = None) -> Case:
    case = services.case_create(title="Claimed strike", claim="Shows a strike", created_by=owner)
    Case.objects.filter(pk=case.pk).update(
        status=status,
        verdict="authentic" if proposer else "",
        verdict_rationale="Matches the skyline." if proposer else "",
        verdict_proposed_by=proposer,
    )
    case.refresh_from_db()
    return case


@pytest.mark.django_db
def test_media_for_a_closed_case_is_refused_and_nothing_is_stored(people, shots_clip, settings):
    # given
    case = case_in("closed", people["analyst"], proposer=people["reviewer"])
    before = stored_originals(settings)

    # when
    response = submit(token_client(people["analyst"]), shots_clip, case=case.pk)

    # then
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "case_closed"
    assert "lead must reopen" in error["message"]
    assert MediaItem.objects.count() == 0
    assert stored_originals(settings) == before
    case.refresh_from_db()
    assert case.status == "closed" and case.verdict == "authentic"
    assert not AuditEvent.objects.filter(case=case, action="media_submitted").exists()


@pytest.mark.django_db
def test_media_for_a_case_with_a_proposed_verdict_sends_it_back_to_review(people, shots_clip):
    # given
    case = case_in("verdict_proposed", people["analyst"], proposer=people["reviewer"])
    client = token_client(people["analyst"])

    # when
    response = submit(client, shots_clip, case=case.pk)

    # then: the item is accepted and the case says it is in review again, without the proposal
    assert response.status_code == 202, response.content
    detail = client.get(f"/api/v1/cases/{case.pk}/").json()
    assert detail["status"] == "in_review"
    assert detail["verdict"] == "" and detail["verdict_rationale"] == "" and detail["verdict_proposed_by"] is None
    history = client.get(f"/api/v1/cases/{case.pk}/history/").json()["results"]
    moved = [e for e in history if e["action"] == "transition"]
    assert len(moved) == 1
    assert moved[0]["actor"] == "ana"
    assert moved[0]["before"] == {"status": "verdict_proposed", "verdict": "authentic"}
    assert moved[0]["after"]["status"] == "in_review" and moved[0]["after"]["move"] == "new_evidence"
    assert "verdict was proposed" in moved[0]["after"]["reason"]


@pytest.mark.django_db
def test_media_for_an_on_hold_case_with_a_proposed_verdict_returns_it_to_review(people, shots_clip):
    case = case_in("on_hold", people["analyst"], proposer=people["reviewer"])
    Case.objects.filter(pk=case.pk).update(held_from="verdict_proposed")

    response = submit(token_client(people["analyst"]), shots_clip, case=case.pk)

    assert response.status_code == 202, response.content
    case.refresh_from_db()
    assert (case.status, case.held_from, case.verdict) == ("on_hold", "in_review", "")
    event = AuditEvent.objects.filter(case=case, action="transition").get()
    assert event.after["held_from"] == "in_review" and event.after["move"] == "new_evidence"


@pytest.mark.django_db
def test_media_for_a_case_ready_for_review_records_why_it_is_new_again(people, shots_clip):
    case = case_in("ready_for_review", people["analyst"])

    response = submit(token_client(people["analyst"]), shots_clip, case=case.pk)

    assert response.status_code == 202
    case.refresh_from_db()
    assert case.status == "new"
    event = AuditEvent.objects.filter(case=case, action="transition").get()
    assert (event.before["status"], event.after["status"], event.after["move"]) == (
        "ready_for_review",
        "new",
        "new_evidence",
    )


@pytest.mark.django_db
def test_desk_history_says_why_new_media_sent_the_case_back_to_review(people, shots_clip):
    # given: new media withdrew a proposed verdict
    case = case_in("verdict_proposed", people["analyst"], proposer=people["reviewer"])
    assert submit(token_client(people["analyst"]), shots_clip, case=case.pk).status_code == 202
    get_user_model().objects.filter(pk=people["reviewer"].pk).update(is_staff=True)
    client = Client()
    client.force_login(people["reviewer"])

    # when
    response = client.get(reverse("admin:workflows_case_change", args=[case.pk]))

    # then
    assert response.status_code == 200
    history = response.content.decode().split('id="history"')[1]
    assert "verdict was proposed; the proposal is withdrawn" in history
    assert "new_evidence" in history
