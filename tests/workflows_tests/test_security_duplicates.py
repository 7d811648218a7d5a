"""``duplicate_of`` names only items the requesting user may see; the bytes are still stored once."""

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from tests.conftest import make_user, submit, token_client
from verify.models import MediaItem
from workflows.events import audit_record
from workflows.models import AuditEvent, Case


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "owner": make_user("owner", "analyst"),
        "stranger": make_user("stranger", "analyst"),
        "reviewer": make_user("rev", "reviewer"),
    }


@pytest.mark.django_db
def test_duplicate_of_never_names_an_item_in_a_case_the_user_may_not_see(people, shots_clip):
    # given: the owner's case holds the clip
    owner_item = submit(token_client(people["owner"]), shots_clip).json()
    stranger = token_client(people["stranger"])

    # when: another analyst submits the same bytes to a new case
    response = submit(stranger, shots_clip, title="Same clip, other case")

    # then: nothing in their answers points at the owner's item
    assert response.status_code == 202
    body = response.json()
    assert body["duplicate_of"] is None
    assert stranger.get(f"/api/v1/media/{owner_item['id']}/").status_code == 404
    assert stranger.get(f"/api/v1/media/{body['id']}/").json()["duplicate_of"] is None
    listed = stranger.get("/api/v1/media/").json()["results"]
    assert [item["duplicate_of"] for item in listed] == [None]
    case = stranger.get(f"/api/v1/cases/{body['case']}/").json()
    assert [item["duplicate_of"] for item in case["media_items"]] == [None]
    history = stranger.get(f"/api/v1/cases/{body['case']}/history/").json()["results"]
    submitted = [event for event in history if event["action"] == "media_submitted"]
    assert submitted[0]["after"]["duplicate_of"] is None
    # and the dedup itself is kept: one stored original for both items
    stored = MediaItem.objects.get(pk=body["id"])
    assert stored.original.name == MediaItem.objects.get(pk=owner_item["id"]).original.name
    assert stored.duplicate_of_id == owner_item["id"]


@pytest.mark.django_db
def test_duplicate_of_names_the_earliest_copy_the_user_may_see(people, shots_clip):
    # given: the owner's case holds the clip; the stranger submits it twice to their own case
    owner_item = submit(token_client(people["owner"]), shots_clip).json()
    stranger = token_client(people["stranger"])
    first = submit(stranger, shots_clip, title="Seen first").json()

    second = submit(stranger, shots_clip, case=first["case"]).json()

    # then: the stranger is told of their own earlier copy, a reviewer of the earliest one
    assert second["duplicate_of"] == first["id"]
    events = AuditEvent.objects.filter(case_id=second["case"], action="media_submitted").order_by("id")
    assert [event.after["duplicate_of"] for event in events] == [None, first["id"]]
    reviewer = token_client(people["reviewer"])
    assert reviewer.get(f"/api/v1/media/{second['id']}/").json()["duplicate_of"] == owner_item["id"]
    assert reviewer.get(f"/api/v1/media/{first['id']}/").json()["duplicate_of"] == owner_item["id"]
    assert reviewer.get(f"/api/v1/media/{owner_item['id']}/").json()["duplicate_of"] is None


@pytest.mark.django_db
def test_migration_drops_other_case_ids_from_recorded_submissions(people, shots_clip):
    # given: a submission event recorded before the fix, naming another case's item
    owner_item = submit(token_client(people["owner"]), shots_clip).json()
    body = submit(token_client(people["stranger"]), shots_clip, title="Other case").json()
    case = Case.objects.get(pk=body["case"])
    audit_record(
        case=case,
        actor=people["stranger"],
        action=AuditEvent.Action.MEDIA_SUBMITTED,
        obj=MediaItem.objects.get(pk=body["id"]),
        after={"sha256": body["sha256"], "duplicate_of": owner_item["id"]},
    )
    migration = MigrationExecutor(connection).loader.get_migration(
        "workflows", "0004_media_submitted_duplicate_in_case"
    )
    state = MigrationExecutor(connection).loader.project_state(("workflows", "0003_roles_and_checklists"))
    forwards = migration.operations[0].code

    # when
    forwards(state.apps, None)

    # then
    events = AuditEvent.objects.filter(case=case, action="media_submitted")
    assert [event.after["duplicate_of"] for event in events] == [None, None]


@pytest.mark.django_db
def test_media_admin_page_links_only_a_copy_the_user_may_see(people, shots_clip):
    # given: the owner's case holds the clip; the stranger submits the same bytes to their own case
    owner_item = submit(token_client(people["owner"]), shots_clip).json()
    body = submit(token_client(people["stranger"]), shots_clip, title="Other case").json()
    for user in (people["stranger"], people["reviewer"]):
        get_user_model().objects.filter(pk=user.pk).update(is_staff=True)
    owner_url = reverse("admin:verify_mediaitem_change", args=[owner_item["id"]])

    def page_for(user: Any) -> str:
        client = Client()
        client.force_login(user)
        response = client.get(reverse("admin:verify_mediaitem_change", args=[body["id"]]))
        assert response.status_code == 200
        return response.content.decode()

    # then: the stranger's page names no other item; a reviewer's links the owner's
    assert owner_url not in page_for(people["stranger"])
    assert f'href="{owner_url}"' in page_for(people["reviewer"])
