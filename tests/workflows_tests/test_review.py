"""The review workflow through the API: transitions, roles, checklist, notes, assignments, history."""

import itertools
import threading
from typing import Any

import pytest
from django.db import connection

from tests.conftest import make_user, submit, token_client, wait_for_analysis
from verify.api.errors import REFUSAL_STATUS
from workflows import services
from workflows.models import AuditEvent, Case, ChecklistItem, Note, Status

STATUSES = [s.value for s in Status]
ROLES = ["analyst", "reviewer", "lead", "nobody"]
OPEN = ["new", "ready_for_review", "in_review", "verdict_proposed"]

# The specification, written out independently of workflows.transitions: who may make each move.
EXPECTED_MOVES: dict[tuple[str, str], set[str]] = {
    ("ready_for_review", "in_review"): {"reviewer", "lead"},
    ("in_review", "verdict_proposed"): {"reviewer", "lead"},
    ("verdict_proposed", "closed"): {"reviewer", "lead"},
    ("verdict_proposed", "in_review"): {"reviewer", "lead"},
    ("closed", "in_review"): {"lead"},
    **{(status, "on_hold"): {"reviewer", "lead"} for status in OPEN},
}


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "analyst": make_user("ana", "analyst"),
        "reviewer": make_user("rev", "reviewer"),
        "reviewer2": make_user("rev2", "reviewer"),
        "lead": make_user("lea", "lead"),
        "nobody": make_user("nob"),
    }


def open_case(owner: Any, **fields: Any) -> Case:
    return services.case_create(title=fields.pop("title", "Claimed strike"), claim="Shows a strike", created_by=owner)


def set_status(case: Case, status: str, *, held_from: str = "", proposer: Any = None) -> Case:
    Case.objects.filter(pk=case.pk).update(
        status=status, held_from=held_from, verdict_proposed_by=proposer, verdict="inconclusive" if proposer else ""
    )
    case.refresh_from_db()
    return case


def transition(client: Any, case: Case, to: str, **extra: Any) -> Any:
    body = {"to": to, "verdict": "inconclusive", "rationale": "No earlier copy found.", "note": "Because.", **extra}
    return client.post(f"/api/v1/cases/{case.pk}/transitions/", body, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_transition_table_every_status_move_and_role(people, source, target):
    for role in ROLES:
        # given: a case the analyst opened (so the analyst can see it), in the source status
        case = open_case(people["analyst"])
        held_from = "in_review" if source == "on_hold" else ""
        proposer = people["reviewer2"] if source == "verdict_proposed" else None
        case = set_status(case, source, held_from=held_from, proposer=proposer)
        if source == "on_hold" and target not in ("on_hold", held_from):
            allowed: set[str] = set()  # an on-hold case goes back only where it came from
        elif source == "on_hold" and target == held_from:
            allowed = {"reviewer", "lead"}
        else:
            allowed = EXPECTED_MOVES.get((source, target), set())
        # when
        response = transition(token_client(people[role]), case, target)
        # then
        case.refresh_from_db()
        if role == "nobody":
            assert response.status_code == 404, (source, target, role)
        elif role in allowed:
            assert response.status_code == 200, (source, target, role, response.json())
            assert case.status == target
            assert response.json()["status"] == target
        else:
            exists = bool(EXPECTED_MOVES.get((source, target))) or (source == "on_hold" and target == held_from)
            assert response.status_code == (403 if exists else 409), (source, target, role, response.json())
            error = response.json()["error"]
            assert error["code"] == ("forbidden_transition" if exists else "illegal_transition")
            assert isinstance(error["allowed_transitions"], list)
            assert case.status == source


@pytest.mark.django_db
def test_illegal_move_answers_409_with_the_moves_allowed_now(people):
    case = set_status(open_case(people["analyst"]), "in_review")

    response = transition(token_client(people["reviewer"]), case, "closed")

    assert response.status_code == 409
    allowed = {(m["to"], m["name"]) for m in response.json()["error"]["allowed_transitions"]}
    assert allowed == {("verdict_proposed", "propose"), ("on_hold", "hold")}


@pytest.mark.django_db
def test_two_person_rule_the_proposer_cannot_approve_or_send_back(people):
    case = set_status(open_case(people["analyst"]), "in_review")
    proposer = token_client(people["reviewer"])
    assert transition(proposer, case, "verdict_proposed").status_code == 200

    own_approval = transition(proposer, case, "closed")
    own_send_back = transition(proposer, case, "in_review")

    assert own_approval.status_code == 403
    assert own_approval.json()["error"]["code"] == "second_person_required"
    assert own_send_back.status_code == 403
    case.refresh_from_db()
    assert case.status == "verdict_proposed"
    # a lead is a second person; so is another reviewer
    assert transition(token_client(people["reviewer2"]), case, "closed").status_code == 200
    case.refresh_from_db()
    assert (case.status, case.verdict_approved_by, case.verdict_proposed_by) == (
        "closed",
        people["reviewer2"],
        people["reviewer"],
    )


@pytest.mark.django_db
def test_proposing_a_verdict_needs_a_verdict_and_a_rationale(people):
    case = set_status(open_case(people["analyst"]), "in_review")
    client = token_client(people["reviewer"])

    missing_verdict = transition(client, case, "verdict_proposed", verdict="")
    missing_rationale = transition(client, case, "verdict_proposed", rationale="  ")

    assert missing_verdict.json()["error"]["code"] == "verdict_required"
    assert missing_rationale.json()["error"]["code"] == "rationale_required"
    assert missing_verdict.status_code == missing_rationale.status_code == 400


@pytest.mark.django_db
def test_sending_back_and_reopening_need_a_note(people):
    case = set_status(open_case(people["analyst"]), "closed")

    response = transition(token_client(people["lead"]), case, "in_review", note="")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "note_required"


@pytest.mark.django_db
def test_checklist_gate_for_verdicts_other_than_inconclusive(people):
    case = set_status(open_case(people["analyst"]), "in_review")
    client = token_client(people["reviewer"])

    blocked = transition(client, case, "verdict_proposed", verdict="misattributed")

    assert blocked.status_code == 409
    error = blocked.json()["error"]
    assert error["code"] == "checklist_incomplete"
    assert error["checklist_items"] == ["date", "location", "provenance"]

    # not applicable without a finding does not settle an item
    client.patch(f"/api/v1/cases/{case.pk}/checklist/provenance/", {"state": "not_applicable"}, format="json")
    still = transition(client, case, "verdict_proposed", verdict="misattributed")
    assert still.json()["error"]["checklist_items"] == ["date", "location", "provenance"]

    for key, body in {
        "provenance": {"state": "done", "finding": "Earliest copy: YouTube, 2015-06-01."},
        "date": {"state": "done", "finding": "Uploaded in 2015, years before the claimed date."},
        "location": {
            "state": "done",
            "finding": "Matches a street in another country.",
            "latitude": 41.0,
            "longitude": 29.0,
        },
    }.items():
        response = client.patch(f"/api/v1/cases/{case.pk}/checklist/{key}/", body, format="json")
        assert response.status_code == 200, response.json()

    allowed = transition(client, case, "verdict_proposed", verdict="misattributed")
    assert allowed.status_code == 200
    assert allowed.json()["verdict"] == "misattributed"


@pytest.mark.django_db
def test_inconclusive_needs_no_checklist(people):
    case = set_status(open_case(people["analyst"]), "in_review")

    response = transition(token_client(people["reviewer"]), case, "verdict_proposed", verdict="inconclusive")

    assert response.status_code == 200


@pytest.mark.django_db
def test_checklist_rejects_bad_values(people):
    case = set_status(open_case(people["analyst"]), "in_review")
    client = token_client(people["reviewer"])

    bad_state = client.patch(f"/api/v1/cases/{case.pk}/checklist/date/", {"state": "maybe"}, format="json")
    bad_lat = client.patch(
        f"/api/v1/cases/{case.pk}/checklist/location/", {"latitude": 95, "longitude": 0}, format="json"
    )
    unknown = client.patch(f"/api/v1/cases/{case.pk}/checklist/weather/", {"state": "done"}, format="json")
    by_analyst = token_client(people["analyst"]).patch(
        f"/api/v1/cases/{case.pk}/checklist/date/", {"state": "done"}, format="json"
    )

    assert bad_state.status_code == bad_lat.status_code == 400
    assert unknown.status_code == 404
    assert by_analyst.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_exactly_one_wins(people):
    # given: two reviewers who both loaded the case before either acted
    case = set_status(open_case(people["analyst"]), "ready_for_review")
    copies = [Case.objects.get(pk=case.pk), Case.objects.get(pk=case.pk)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(copy: Case, reviewer: Any) -> None:
        try:
            barrier.wait()
            services.case_transition(case=copy, to="in_review", actor=reviewer)
            outcomes.append("won")
        except services.WorkflowError as refusal:
            outcomes.append(f"{REFUSAL_STATUS[refusal.kind]} {refusal.code}")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=act, args=(copies[0], people["reviewer"])),
        threading.Thread(target=act, args=(copies[1], people["reviewer2"])),
    ]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert sorted(outcomes) == ["409 case_changed", "won"]
    case.refresh_from_db()
    assert case.status == "in_review"
    assert AuditEvent.objects.filter(case=case, action="transition").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_api_requests_one_wins_the_other_gets_409(people):
    case = set_status(open_case(people["analyst"]), "ready_for_review")
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def take(user: Any) -> None:
        client = token_client(user)
        barrier.wait()
        codes.append(transition(client, case, "in_review").status_code)
        connection.close()

    threads = [threading.Thread(target=take, args=(people[name],)) for name in ("reviewer", "reviewer2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(codes) == [200, 409]


@pytest.mark.django_db
def test_a_user_who_may_not_see_a_case_gets_404_from_every_endpoint(people, shots_clip):
    # given: a case opened by one analyst, with a media item
    owner_client = token_client(people["analyst"])
    item = submit(owner_client, shots_clip).json()
    case_id = item["case"]
    other_analyst = make_user("other", "analyst")
    endpoints = [
        ("get", f"/api/v1/cases/{case_id}/", None),
        ("post", f"/api/v1/cases/{case_id}/transitions/", {"to": "on_hold", "note": "x"}),
        ("get", f"/api/v1/cases/{case_id}/notes/", None),
        ("post", f"/api/v1/cases/{case_id}/notes/", {"body": "x"}),
        ("post", f"/api/v1/cases/{case_id}/assignment/", {"assignee": "rev"}),
        ("patch", f"/api/v1/cases/{case_id}/checklist/date/", {"state": "done"}),
        ("get", f"/api/v1/cases/{case_id}/history/", None),
        ("get", f"/api/v1/media/{item['id']}/", None),
        ("get", f"/api/v1/media/{item['id']}/status/", None),
        ("get", f"/api/v1/media/{item['id']}/original/", None),
        ("get", f"/api/v1/media/{item['id']}/contact-sheet/", None),
    ]
    for user in (other_analyst, people["nobody"]):
        client = token_client(user)
        for method, url, body in endpoints:
            # when
            response = getattr(client, method)(url, body, format="json")
            # then
            assert response.status_code == 404, (user.username, method, url, response.content)
        assert client.get("/api/v1/cases/").json()["count"] == 0
        assert client.get("/api/v1/media/").json()["count"] == 0
        assert submit(client, shots_clip, case=case_id).status_code in (400, 403)
    # the owner, the reviewers and the lead see it
    for user in (people["analyst"], people["reviewer"], people["lead"]):
        assert token_client(user).get(f"/api/v1/cases/{case_id}/").status_code == 200


@pytest.mark.django_db
def test_an_assigned_analyst_sees_the_case(people):
    case = open_case(people["reviewer"])
    client = token_client(people["analyst"])
    assert client.get(f"/api/v1/cases/{case.pk}/").status_code == 404

    Case.objects.filter(pk=case.pk).update(assignee=people["analyst"])

    assert client.get(f"/api/v1/cases/{case.pk}/").status_code == 200


@pytest.mark.django_db
def test_a_user_without_a_role_cannot_open_cases(people):
    response = token_client(people["nobody"]).post("/api/v1/cases/", {"title": "t", "claim": "c"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_notes_are_versioned_never_edited_in_place_or_deleted(people):
    case = open_case(people["analyst"])
    client = token_client(people["reviewer"])
    first = client.post(f"/api/v1/cases/{case.pk}/notes/", {"body": "Shadows point north-west."}, format="json")
    assert first.status_code == 201

    edited = client.post(
        f"/api/v1/cases/{case.pk}/notes/", {"body": "Shadows point north-east.", "replaces": first.json()["id"]}
    )

    assert edited.status_code == 201
    assert edited.json()["replaces"] == first.json()["id"]
    versions = client.get(f"/api/v1/cases/{case.pk}/notes/").json()
    assert [(n["body"], n["replaced_by"]) for n in versions] == [
        ("Shadows point north-west.", edited.json()["id"]),
        ("Shadows point north-east.", None),
    ]
    detail = client.get(f"/api/v1/cases/{case.pk}/").json()
    assert [n["body"] for n in detail["notes"]] == ["Shadows point north-east."]
    # no interface changes or removes a note
    assert client.put(f"/api/v1/cases/{case.pk}/notes/", {"body": "x"}).status_code == 405
    assert client.delete(f"/api/v1/cases/{case.pk}/notes/").status_code == 405
    note = Note.objects.get(pk=first.json()["id"])
    note.body = "rewritten"
    with pytest.raises(PermissionError):
        note.save()
    with pytest.raises(PermissionError):
        note.delete()
    with pytest.raises(PermissionError):
        Note.objects.filter(case=case).update(body="rewritten")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(case=case).delete()
    # another reviewer may not write a new version of someone else's note
    other = token_client(people["reviewer2"]).post(
        f"/api/v1/cases/{case.pk}/notes/", {"body": "mine now", "replaces": edited.json()["id"]}
    )
    assert other.status_code == 403


@pytest.mark.django_db
def test_assignment_by_a_lead_keeps_the_history(people):
    case = set_status(open_case(people["analyst"]), "ready_for_review")
    lead = token_client(people["lead"])

    first = lead.post(f"/api/v1/cases/{case.pk}/assignment/", {"assignee": "rev"}, format="json")
    second = lead.post(f"/api/v1/cases/{case.pk}/assignment/", {"assignee": "rev2"}, format="json")
    by_reviewer = token_client(people["reviewer"]).post(
        f"/api/v1/cases/{case.pk}/assignment/", {"assignee": "rev"}, format="json"
    )
    to_analyst = lead.post(f"/api/v1/cases/{case.pk}/assignment/", {"assignee": "ana"}, format="json")

    assert first.status_code == 200 and first.json()["status"] == "in_review"
    assert second.json()["assignee"] == "rev2"
    assert by_reviewer.status_code == 403
    assert to_analyst.status_code == 400
    assert list(case.assignments.values_list("assignee__username", "assigned_by__username")) == [
        ("rev", "lea"),
        ("rev2", "lea"),
    ]
    assignments = [
        e for e in lead.get(f"/api/v1/cases/{case.pk}/history/").json()["results"] if e["action"] == "assignment"
    ]
    assert [(e["before"]["assignee"], e["after"]["assignee"]) for e in assignments] == [(None, "rev"), ("rev", "rev2")]


@pytest.mark.django_db
def test_case_detail_shows_the_moves_this_user_may_make(people):
    case = set_status(open_case(people["analyst"]), "verdict_proposed", proposer=people["reviewer"])

    as_proposer = token_client(people["reviewer"]).get(f"/api/v1/cases/{case.pk}/").json()
    as_lead = token_client(people["lead"]).get(f"/api/v1/cases/{case.pk}/").json()
    as_analyst = token_client(people["analyst"]).get(f"/api/v1/cases/{case.pk}/").json()

    assert [m["name"] for m in as_proposer["allowed_transitions"]] == ["hold"]
    assert {m["name"] for m in as_lead["allowed_transitions"]} == {"approve", "send_back", "hold"}
    assert as_analyst["allowed_transitions"] == []
    assert [c["key"] for c in as_lead["checklist"]] == ["provenance", "source", "date", "location", "motivation"]


@pytest.mark.worker
def test_review_scenario_through_the_api_alone_is_complete_in_the_history(worker, shots_clip):
    # given: an analyst submits footage and the analysis finishes
    analyst = make_user("ana", "analyst")
    reviewer, reviewer2, lead = make_user("rev", "reviewer"), make_user("rev2", "reviewer"), make_user("lea", "lead")
    ana, rev, rev2, lea = (token_client(u) for u in (analyst, reviewer, reviewer2, lead))
    item = submit(ana, shots_clip, title="Soldiers in a border village", claim="Filmed yesterday").json()
    case_id = item["case"]
    detail = wait_for_analysis(ana, item["id"]).detail
    assert rev.get(f"/api/v1/cases/{case_id}/").json()["status"] == "ready_for_review"

    # when: the case is assigned, worked, proposed, sent back, proposed again, approved and reopened
    assert lea.post(f"/api/v1/cases/{case_id}/assignment/", {"assignee": "rev"}).status_code == 200
    keyframe = detail["keyframes"][1]
    note = rev.post(
        f"/api/v1/cases/{case_id}/notes/",
        {"body": "Hills on the horizon match the claimed area.", "media_item": item["id"], "keyframe": keyframe["id"]},
    )
    assert note.status_code == 201 and note.json()["timestamp_s"] == keyframe["timestamp_s"]
    for key in ("provenance", "date", "location"):
        assert (
            rev.patch(
                f"/api/v1/cases/{case_id}/checklist/{key}/", {"state": "done", "finding": f"{key} ok"}
            ).status_code
            == 200
        )
    assert rev.get(f"/api/v1/media/{item['id']}/original/").status_code == 200
    steps = [
        (rev, {"to": "verdict_proposed", "verdict": "authentic", "rationale": "Geolocated and dated."}),
        (lea, {"to": "in_review", "note": "Check the shadows for the time of day."}),
        (rev, {"to": "verdict_proposed", "verdict": "authentic", "rationale": "Shadows fit midday."}),
        (rev2, {"to": "closed"}),
        (lea, {"to": "in_review", "note": "A new earlier copy was found."}),
    ]
    for client, body in steps:
        response = client.post(f"/api/v1/cases/{case_id}/transitions/", body, format="json")
        assert response.status_code == 200, response.json()

    # then: every step is in the history, in order, with its actor
    history = lea.get(f"/api/v1/cases/{case_id}/history/", {"page_size": 500}).json()["results"]
    summary = [(e["action"], e["actor"]) for e in history]
    assert summary == [
        ("case_opened", "ana"),
        ("media_submitted", "ana"),
        ("analysis_finished", None),
        ("transition", None),
        ("assignment", "lea"),
        ("transition", "lea"),
        ("note_added", "rev"),
        ("checklist_changed", "rev"),
        ("checklist_changed", "rev"),
        ("checklist_changed", "rev"),
        ("original_downloaded", "rev"),
        ("transition", "rev"),
        ("verdict_proposed", "rev"),
        ("transition", "lea"),
        ("note_added", "lea"),
        ("transition", "rev"),
        ("verdict_proposed", "rev"),
        ("transition", "rev2"),
        ("verdict_approved", "rev2"),
        ("transition", "lea"),
        ("note_added", "lea"),
    ]
    statuses = [(e["before"]["status"], e["after"]["status"]) for e in history if e["action"] == "transition"]
    assert statuses == [
        ("new", "ready_for_review"),
        ("ready_for_review", "in_review"),
        ("in_review", "verdict_proposed"),
        ("verdict_proposed", "in_review"),
        ("in_review", "verdict_proposed"),
        ("verdict_proposed", "closed"),
        ("closed", "in_review"),
    ]
    approved = next(e for e in history if e["action"] == "verdict_approved")
    assert approved["after"] == {"verdict": "authentic", "proposed_by": "rev"}
    final = lea.get(f"/api/v1/cases/{case_id}/").json()
    assert final["status"] == "in_review" and final["verdict"] == ""
    assert ChecklistItem.objects.filter(case_id=case_id, state="done").count() == 3
