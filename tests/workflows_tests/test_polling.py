"""The polling path: token and roles in one query, the status row in one more, same answers as the ORM."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from tests.conftest import database_url, make_user, token_client
from verify.models import MediaItem
from workflows import polling, selectors, services
from workflows.api.media.serializers import AnalysisStatusSerializer
from workflows.benchmark.web import gunicorn_server
from workflows.models import Case

pytestmark = pytest.mark.django_db

STATUS_KEYS = {
    "id", "state", "stage", "progress_percent", "fetched_bytes", "fetch_total_bytes", "error", "detail", "attempts",
    "updated_at",
}  # fmt: skip


def _submit(clip: Path, *, user: Any, case: Case | None = None, title: str = "Claimed footage") -> MediaItem:
    with clip.open("rb") as handle:
        upload = UploadedFile(handle, name="clip.mp4", content_type="video/mp4", size=clip.stat().st_size)
        return services.case_media_submit(
            case=case, claim_fields={"title": title, "claim": "Soldiers in the village."}, upload=upload,
            submitted_by=user,
        )  # fmt: skip


@pytest.fixture
def people() -> dict[str, Any]:
    return {
        "creator": make_user("creator", "analyst"),
        "assignee": make_user("assignee", "analyst"),
        "contributor": make_user("contributor", "analyst"),
        "outsider": make_user("outsider", "analyst"),
        "reviewer": make_user("reviewer", "reviewer"),
        "lead": make_user("lead", "lead"),
        "two_roles": make_user("two-roles", "analyst", "reviewer"),
        "superuser": make_user("root-user", is_superuser=True),
        "no_role": make_user("no-role"),
        "inactive_reviewer": make_user("inactive", "reviewer", is_active=False),
    }


@pytest.fixture
def items(people: dict[str, Any], shots_clip: Path) -> list[MediaItem]:
    """Media in three cases, seen by analysts in each of the three ways an analyst can see a case."""
    opened = _submit(shots_clip, user=people["creator"], title="Opened by the creator")
    added = _submit(shots_clip, user=people["contributor"], case=opened.case)
    assigned = _submit(shots_clip, user=people["reviewer"], title="Assigned to an analyst")
    Case.objects.filter(pk=assigned.case_id).update(assignee=people["assignee"])
    unrelated = _submit(shots_clip, user=people["lead"], title="Nobody's but the lead's")
    MediaItem.objects.filter(pk=unrelated.pk).update(
        state=MediaItem.State.FAILED, error_code="decode_failed", error_message="The file could not be decoded."
    )
    return [opened, added, assigned, unrelated]


def test_status_visibility_is_the_media_lists_for_every_user_and_item(people, items):
    for name, user in people.items():
        listed = set(selectors.media_item_list_for_user(user=user).values_list("pk", flat=True))
        for item in items:
            row = polling.media_item_status_for_user(user=user, pk=item.pk)
            assert (row is not None) == (item.pk in listed), (name, item.case.title)
    # The same rule, spelled out, so that both versions cannot drift together.
    visible = {name: {item.pk for item in items if polling.media_item_status_for_user(user=user, pk=item.pk)}
               for name, user in people.items()}  # fmt: skip
    opened, added, assigned, unrelated = (item.pk for item in items)
    everything = {opened, added, assigned, unrelated}
    assert visible == {
        "creator": {opened, added},
        "assignee": {assigned},
        "contributor": {opened, added},
        "outsider": set(),
        "reviewer": everything,
        "lead": everything,
        "two_roles": everything,
        "superuser": everything,
        "no_role": set(),
        "inactive_reviewer": set(),
    }
    assert polling.media_item_status_for_user(user=AnonymousUser(), pk=opened) is None


def test_status_answer_equals_the_serializers_for_queued_and_failed_items(people, items):
    client = token_client(people["lead"])
    for item in items:
        item.refresh_from_db()
        answer = client.get(f"/api/v1/media/{item.pk}/status/")
        assert answer.status_code == 200
        assert answer.json() == AnalysisStatusSerializer(item).data
        assert set(answer.json()) == STATUS_KEYS
    failed = client.get(f"/api/v1/media/{items[-1].pk}/status/").json()
    assert failed["state"] == "failed"
    assert failed["error"] == {"code": "decode_failed", "message": "The file could not be decoded."}


def test_status_answer_equals_the_serializers_for_an_interrupted_item(people, items):
    # given: an analysis whose worker was lost in its first of three attempts
    MediaItem.objects.filter(pk=items[0].pk).update(
        state=MediaItem.State.INTERRUPTED, stage=MediaItem.Stage.WAITING, attempts=1
    )
    client = token_client(people["creator"])
    # when
    answer = client.get(f"/api/v1/media/{items[0].pk}/status/").json()
    # then
    items[0].refresh_from_db()
    assert answer == AnalysisStatusSerializer(items[0]).data
    assert answer["state"] == "interrupted"
    assert answer["detail"] == "interrupted: the worker was lost; retrying (attempt 2 of 3)"
    assert answer["error"] is None


def test_status_costs_two_queries_token_with_roles_and_the_row(people, items):
    client = token_client(people["creator"])
    url = f"/api/v1/media/{items[0].pk}/status/"
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    assert len(queries) == 2, [query["sql"] for query in queries]


@pytest.mark.parametrize("pk", ["abc", "0", "-1", str(2**63), str(2**70), "1e3"])
def test_status_of_an_impossible_id_is_not_found(people, items, pk):
    answer = token_client(people["lead"]).get(f"/api/v1/media/{pk}/status/")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_status_of_an_invisible_item_is_not_found_like_a_missing_one(people, items):
    client = token_client(people["outsider"])
    hidden = client.get(f"/api/v1/media/{items[0].pk}/status/")
    missing = client.get("/api/v1/media/987654/status/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


def test_token_user_carries_the_roles_the_groups_give(people):
    for user in people.values():
        loaded = polling.token_user(key=user.auth_token.key)
        fresh = type(user).objects.get(pk=user.pk)
        assert loaded is not None
        assert (loaded.pk, loaded.username, loaded.is_active) == (fresh.pk, fresh.username, fresh.is_active)
        assert selectors.user_roles(loaded) == selectors.user_roles(fresh), user.username
        # Fields the query did not read load when asked for.
        assert loaded.date_joined == fresh.date_joined
    assert polling.token_user(key="0" * 40) is None


def test_api_refuses_an_unknown_token_and_an_inactive_user_with_drfs_messages(people):
    client = token_client(people["inactive_reviewer"])
    answer = client.get("/api/v1/media/")
    assert answer.status_code == 401
    assert answer.json()["error"] == {"code": "authentication_failed", "message": "User inactive or deleted."}
    client.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)
    answer = client.get("/api/v1/media/")
    assert answer.status_code == 401
    assert answer.json()["error"] == {"code": "authentication_failed", "message": "Invalid token."}
    assert answer["WWW-Authenticate"] == "Token"


def test_a_deleted_token_stops_working_on_the_next_request(people, items):
    client = token_client(people["lead"])
    url = f"/api/v1/media/{items[0].pk}/status/"
    assert client.get(url).status_code == 200
    Token.objects.filter(user=people["lead"]).delete()
    assert client.get(url).status_code == 401


def test_a_role_taken_away_applies_on_the_next_request(people, items):
    client = token_client(people["two_roles"])
    url = f"/api/v1/media/{items[-1].pk}/status/"
    assert client.get(url).status_code == 200
    people["two_roles"].groups.remove(*people["two_roles"].groups.filter(name="reviewer"))
    assert client.get(url).status_code == 404


# --- PostgreSQL: the health check of persistent connections ---------------------------------

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="persistent connections and their health check are PostgreSQL's"
)


def _terminate(backend_pid: int) -> None:
    with psycopg.connect(database_url(connections["default"].settings_dict), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])


@postgres_only
def test_health_check_keeps_a_quiet_connection_and_drops_one_the_server_closed():
    other = connections.create_connection("default")
    try:
        other.ensure_connection()
        assert other.is_usable()
        first_backend = other.connection.info.backend_pid
        _terminate(first_backend)
        deadline = time.monotonic() + 5
        while other.is_usable() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not other.is_usable()
        # What Django does when the next request starts, then that request's first query.
        other.close_if_unusable_or_obsolete()
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (backend,) = cursor.fetchone()
        assert backend != first_backend
    finally:
        other.close()


@postgres_only
def test_a_web_worker_answers_after_the_database_closed_its_connection(transactional_db, shots_clip, tmp_path):
    lead = make_user("poller", "lead")
    item = _submit(shots_clip, user=lead)
    app_name = f"verify-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": database_url(connections["default"].settings_dict), "PGAPPNAME": app_name}
    admin_url = database_url(connections["default"].settings_dict)

    def web_backends() -> list[int]:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [app_name])
            return [row[0] for row in rows.fetchall()]

    def poll(base_url: str) -> int:
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{base_url}/api/v1/media/{item.pk}/status/", headers={"Authorization": f"Token {lead.auth_token.key}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    with gunicorn_server(workers=1, log_path=tmp_path / "gunicorn.log", env=env) as server:
        assert poll(server.url) == 200
        (backend,) = web_backends()
        _terminate(backend)
        deadline = time.monotonic() + 5
        while backend in web_backends() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert poll(server.url) == 200  # on a new connection, not a 500
        assert poll(server.url) == 200
        assert backend not in web_backends()
