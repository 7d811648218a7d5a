"""An object the user may not see answers exactly like one that does not exist."""

from typing import Any

import pytest

from tests.conftest import make_user, submit, token_client
from verify.models import Keyframe, MediaItem
from workflows import services
from workflows.models import Case

MISSING_ID = 999_999


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "owner": make_user("owner", "analyst"),
        "stranger": make_user("stranger", "analyst"),
        "reviewer": make_user("rev", "reviewer"),
        "lead": make_user("lea", "lead"),
    }


def answer(response: Any) -> tuple[int, Any]:
    return response.status_code, response.json()


@pytest.mark.django_db
def test_media_list_filtered_by_an_invisible_case_answers_like_a_missing_case(people, shots_clip):
    # given: a case the stranger may not see
    hidden = submit(token_client(people["owner"]), shots_clip).json()["case"]
    stranger = token_client(people["stranger"])

    # when
    invisible = stranger.get("/api/v1/media/", {"case": hidden})
    missing = stranger.get("/api/v1/media/", {"case": MISSING_ID})

    # then
    assert answer(invisible) == answer(missing)
    assert invisible.status_code == 200 and invisible.json()["results"] == []


@pytest.mark.django_db
def test_case_list_filtered_by_an_unknown_assignee_answers_like_a_user_with_no_cases(people):
    client = token_client(people["stranger"])

    existing = client.get("/api/v1/cases/", {"assignee": people["reviewer"].pk})
    missing = client.get("/api/v1/cases/", {"assignee": MISSING_ID})

    assert answer(existing) == answer(missing)
    assert existing.status_code == 200 and existing.json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["media_item", "keyframe", "replaces"])
def test_note_refering_to_another_case_answers_like_a_missing_id(people, shots_clip, field):
    # given: the stranger's own case, and an item, keyframe and note in a case they may not see
    owner = token_client(people["owner"])
    other = MediaItem.objects.get(pk=submit(owner, shots_clip).json()["id"])
    keyframe = Keyframe.objects.create(media_item=other, timestamp_s=1.0, image="k.jpg", width=1, height=1)
    other_note = services.note_add(case=other.case, author=people["owner"], body="Theirs.")
    other_ids = {"media_item": other.pk, "keyframe": keyframe.pk, "replaces": other_note.pk}
    own_case = services.case_create(title="Mine", claim="Mine", created_by=people["stranger"])
    stranger = token_client(people["stranger"])
    url = f"/api/v1/cases/{own_case.pk}/notes/"

    # when
    invisible = stranger.post(url, {"body": "x", field: other_ids[field]}, format="json")
    missing = stranger.post(url, {"body": "x", field: other_ids[field]} | {field: MISSING_ID}, format="json")

    # then: the same status, code and message, apart from the id echoed back
    assert invisible.status_code == missing.status_code == 400
    seen, absent = invisible.json()["error"], missing.json()["error"]
    assert seen["code"] == absent["code"] == "invalid"
    assert seen["fields"][field][0]["code"] == absent["fields"][field][0]["code"] == "does_not_exist"
    assert seen["fields"][field][0]["message"].replace(str(other_ids[field]), "ID") == absent["fields"][field][0][
        "message"
    ].replace(str(MISSING_ID), "ID")
    assert Case.objects.get(pk=own_case.pk).notes.count() == 0


@pytest.mark.django_db
def test_assignment_by_a_non_lead_is_refused_before_the_username_is_looked_up(people):
    case = services.case_create(title="Claim", claim="Claim", created_by=people["owner"])
    reviewer = token_client(people["reviewer"])
    url = f"/api/v1/cases/{case.pk}/assignment/"

    existing = reviewer.post(url, {"assignee": "lea"}, format="json")
    missing = reviewer.post(url, {"assignee": "no-such-user"}, format="json")

    assert answer(existing) == answer(missing)
    assert existing.status_code == 403
    error = existing.json()["error"]
    assert error["code"] == "forbidden"
    assert "not a lead" in error["message"]
    case.refresh_from_db()
    assert case.assignee is None


@pytest.mark.django_db
def test_assignment_by_a_lead_still_reports_an_unknown_username(people):
    case = services.case_create(title="Claim", claim="Claim", created_by=people["owner"])

    response = token_client(people["lead"]).post(
        f"/api/v1/cases/{case.pk}/assignment/", {"assignee": "no-such-user"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["assignee"][0]["message"] == "No active user has this username."
