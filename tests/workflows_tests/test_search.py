"""GET /api/v1/search/ and the desk's search box: ranked, filtered, only cases the user may see."""

from __future__ import annotations

from datetime import UTC, date, datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from tests.conftest import make_user, token_client
from verify.models import Keyframe, KeyframeText, MediaItem, MediaMetadata
from workflows import search, selectors, services
from workflows.models import Case
from workflows.search_index import case_search_document_refresh


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "analyst": make_user("ana", "analyst", is_staff=True),
        "other": make_user("other", "analyst", is_staff=True),
        "reviewer": make_user("rev", "reviewer", is_staff=True),
    }


def _case(owner: Any, title: str, claim: str = "A claim.", **fields: Any) -> Case:
    return services.case_create(title=title, claim=claim, created_by=owner, **fields)


def _media(case: Case, owner: Any, *, sha256: str, ocr: str = "", make: str = "", gps: bool = False,
           captured: datetime | None = None) -> MediaItem:  # fmt: skip
    item = MediaItem.objects.create(
        case=case, original="originals/x.mp4", size_bytes=1, sha256=sha256, uploaded_by=owner,
        state=MediaItem.State.SUCCEEDED,
    )  # fmt: skip
    MediaMetadata.objects.create(
        media_item=item, raw={}, device_make=make, creation_time=captured,
        latitude=50.45 if gps else None, longitude=30.52 if gps else None,
    )  # fmt: skip
    if ocr:
        keyframe = Keyframe.objects.create(
            media_item=item, timestamp_s=0.0, image="k.jpg", width=1, height=1, phash="0" * 16, source_sha256=sha256
        )
        KeyframeText.objects.create(keyframe=keyframe, media_item=item, text=ocr, words=[], languages="ukr")
    case_search_document_refresh(case_id=case.pk)
    return item


def _search(user: Any, **params: Any) -> dict[str, Any]:
    response = token_client(user).get("/api/v1/search/", params)
    assert response.status_code == 200, response.content
    return dict(response.json())


def _titles(body: dict[str, Any]) -> list[str]:
    return [row["title"] for row in body["results"]]


@pytest.mark.django_db(transaction=True)
def test_search_never_finds_a_case_the_analyst_may_not_see(people: dict[str, Any]) -> None:
    _case(people["analyst"], "Convoy near the bridge")
    _case(people["other"], "Convoy in the village")

    mine = _search(people["analyst"], q="convoy")
    theirs = _search(people["other"], q="convoy")
    everyone = _search(people["reviewer"], q="convoy")

    assert _titles(mine) == ["Convoy near the bridge"]
    assert _titles(theirs) == ["Convoy in the village"]
    assert sorted(_titles(everyone)) == ["Convoy in the village", "Convoy near the bridge"]


@pytest.mark.django_db(transaction=True)
def test_search_ranks_a_title_match_above_a_claim_match_and_marks_the_snippet(people: dict[str, Any]) -> None:
    _case(people["analyst"], "Market at dawn", claim="Soldiers are said to cross the river near the checkpoint.")
    _case(people["analyst"], "Checkpoint at the river", claim="Footage of a queue.")

    body = _search(people["analyst"], q="checkpoint")

    assert _titles(body) == ["Checkpoint at the river", "Market at dawn"]
    assert body["results"][0]["rank"] > body["results"][1]["rank"]
    first = Case.objects.get(title="Checkpoint at the river")
    assert body["results"][0] | {"rank": 0, "snippet": ""} == {
        "id": first.pk, "url": f"http://testserver/api/v1/cases/{first.pk}/", "title": first.title, "status": "new",
        "verdict": "", "claimed_date": None, "created_at": body["results"][0]["created_at"], "rank": 0, "snippet": "",
    }  # fmt: skip
    assert token_client(people["analyst"]).get(body["results"][0]["url"]).json()["title"] == first.title
    assert "<mark>checkpoint</mark>" in body["results"][1]["snippet"].lower()


@pytest.mark.django_db(transaction=True)
def test_search_finds_cyrillic_text_read_in_a_keyframe_and_escapes_the_snippet(people: dict[str, Any]) -> None:
    case = _case(people["analyst"], "Street sign <b>", claimed_location="Київ")
    _media(case, people["analyst"], sha256="ab" * 32, ocr="вулиця Шевченка")
    _case(people["analyst"], "Something else")

    by_word = _search(people["analyst"], q="Шевченка")
    by_prefix = _search(people["analyst"], q="шевч")
    by_place = _search(people["analyst"], q="київ")

    assert _titles(by_word) == _titles(by_prefix) == _titles(by_place) == ["Street sign <b>"]
    assert "<mark>Шевченка</mark>" in by_word["results"][0]["snippet"]
    assert "&lt;b&gt;" in by_place["results"][0]["snippet"] and "<b>" not in by_place["results"][0]["snippet"]


@pytest.mark.django_db(transaction=True)
def test_search_by_sha256_prefix_device_and_filters(people: dict[str, Any]) -> None:
    with_gps = _case(people["analyst"], "Drone strike", claimed_date=date(2024, 3, 2))
    _media(with_gps, people["analyst"], sha256="c0ffee" + "0" * 58, make="Apple", gps=True,
           captured=datetime(2024, 3, 2, 8, tzinfo=UTC))  # fmt: skip
    without = _case(people["analyst"], "Drone over the field", claimed_date=date(2023, 1, 5))
    _media(without, people["analyst"], sha256="d" * 64, make="Samsung")

    assert _titles(_search(people["analyst"], q="c0ffee")) == ["Drone strike"]
    assert _titles(_search(people["analyst"], q="samsung")) == ["Drone over the field"]
    assert _titles(_search(people["analyst"], q="drone", has_gps="true")) == ["Drone strike"]
    assert _titles(_search(people["analyst"], q="drone", has_gps="false")) == ["Drone over the field"]
    assert _titles(_search(people["analyst"], q="drone", claimed_date_to="2023-12-31")) == ["Drone over the field"]
    assert _titles(_search(people["analyst"], q="drone", captured_from="2024-03-01T00:00:00Z")) == ["Drone strike"]
    assert sorted(_titles(_search(people["analyst"], q="drone", status="new"))) == [
        "Drone over the field",
        "Drone strike",
    ]
    assert _titles(_search(people["analyst"], q="drone", status="closed")) == []
    assert _titles(_search(people["analyst"], q="drone", seen_before="true")) == []
    assert token_client(people["analyst"]).get("/api/v1/search/", {"status": "nonsense"}).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_search_ranks_only_the_newest_matches_past_the_cap_and_says_so(
    people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: five of the analyst's cases and two of another analyst's match; three are ranked,
    # searched in windows of two cases so that the newest ones are found across windows
    monkeypatch.setattr(search, "RANKED_MAX", 3)
    monkeypatch.setattr(search, "_FIRST_WINDOW", 2)
    mine = [_case(people["analyst"], title, claim=claim) for title, claim in (
        ("Oldest", "A bridge."), ("Older", "A bridge."), ("Bridge at dawn", "Smoke."), ("Newer", "The bridge."),
        ("Newest", "A bridge again."),
    )]  # fmt: skip
    _case(people["other"], "Bridge elsewhere")
    _case(people["other"], "Another bridge")

    # when
    as_analyst = _search(people["analyst"], q="bridge")
    as_reviewer = _search(people["reviewer"], q="bridge")
    narrow = _search(people["analyst"], q="bridge dawn")

    # then: the newest three of the analyst's own, the title match first, and the count capped
    assert (as_analyst["count"], as_analyst["capped"]) == (3, True)
    assert _titles(as_analyst) == ["Bridge at dawn", "Newest", "Newer"]
    assert as_analyst["results"][0]["id"] == mine[2].pk
    assert (as_reviewer["count"], as_reviewer["capped"]) == (3, True)
    assert _titles(as_reviewer) == ["Another bridge", "Bridge elsewhere", "Newest"]
    assert (narrow["count"], narrow["capped"], _titles(narrow)) == (1, False, ["Bridge at dawn"])


@pytest.mark.django_db(transaction=True)
def test_search_pages_through_the_ranked_cases(people: dict[str, Any]) -> None:
    for n in range(5):
        _case(people["analyst"], f"Checkpoint {n}")

    first = _search(people["analyst"], q="checkpoint", page_size=2)
    last = _search(people["analyst"], q="checkpoint", page_size=2, page=3)

    assert (first["count"], first["capped"], len(first["results"])) == (5, False, 2)
    assert first["next"] and first["previous"] is None
    assert _titles(last) == ["Checkpoint 0"] and last["next"] is None


@pytest.mark.django_db(transaction=True)
def test_search_finds_a_part_of_a_source_url_only_in_visible_cases(people: dict[str, Any]) -> None:
    _case(people["analyst"], "Post", source_url="https://t.me/kyiv_today/4512")
    _case(people["other"], "Same channel", source_url="https://t.me/kyiv_today/4513")

    assert _titles(_search(people["analyst"], q="t.me/kyiv_today")) == ["Post"]
    assert sorted(_titles(_search(people["reviewer"], q="t.me/kyiv_today"))) == ["Post", "Same channel"]


@pytest.mark.django_db(transaction=True)
def test_search_follows_the_case_list_rule_not_the_index(people: dict[str, Any]) -> None:
    # given: the analyst submitted media to another analyst's case, and was assigned a third one
    submitted = _case(people["other"], "Crossing submitted to")
    item = _media(submitted, people["analyst"], sha256="e" * 64)
    assigned = _case(people["other"], "Crossing assigned")
    Case.objects.filter(pk=assigned.pk).update(assignee=people["analyst"])
    case_search_document_refresh(case_id=assigned.pk)
    _case(people["other"], "Crossing of theirs")
    before = _titles(_search(people["analyst"], q="crossing"))
    # when: the item is removed (the search document keeps its submitter until it is rebuilt)
    MediaItem.objects.filter(pk=item.pk).delete()
    after = _titles(_search(people["analyst"], q="crossing"))
    # then
    assert sorted(before) == ["Crossing assigned", "Crossing submitted to"]
    assert after == ["Crossing assigned"]
    assert selectors.user_sees_every_case(user=people["reviewer"])
    assert not selectors.user_sees_every_case(user=people["analyst"])


@pytest.mark.django_db(transaction=True)
def test_search_finds_notes(people: dict[str, Any]) -> None:
    case = _case(people["analyst"], "Night footage")
    services.note_add(case=case, author=people["reviewer"], body="Geolocated to the grain elevator in Kupiansk.")

    assert _titles(_search(people["analyst"], q="elevator kupiansk")) == ["Night footage"]
    assert _titles(_search(people["analyst"], q="elevator odesa")) == []


@pytest.mark.django_db(transaction=True)
def test_desk_search_box_ranks_and_hides_other_analysts_cases(people: dict[str, Any]) -> None:
    _case(people["analyst"], "Вибух на заводі")
    _case(people["other"], "Вибух біля школи")
    client = Client()
    client.force_login(people["analyst"])

    html = client.get("/admin/workflows/case/", {"q": "вибух"}).content.decode()

    assert "Вибух на заводі" in html
    assert "Вибух біля школи" not in html
    assert "<mark>Вибух</mark>" in html


@pytest.mark.django_db(transaction=True)
def test_desk_search_box_ranks_only_the_newest_matches_like_the_api(
    people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: three of the reviewer's visible cases mention the convoy, and the ranking cap is two
    monkeypatch.setattr(search, "RANKED_MAX", 2)
    for title in ("Convoy at the bridge", "Convoy in the market", "Convoy near the school"):
        _case(people["analyst"], title)
    client = Client()
    client.force_login(people["reviewer"])

    # when
    html = client.get("/admin/workflows/case/", {"q": "convoy"}).content.decode()

    # then: the desk lists the same two cases the API ranks, the oldest left out
    assert set(_titles(_search(people["reviewer"], q="convoy"))) == {"Convoy near the school", "Convoy in the market"}
    assert "Convoy near the school" in html and "Convoy in the market" in html
    assert "Convoy at the bridge" not in html


def test_rebuild_search_index_makes_bulk_imported_cases_findable(people: dict[str, Any]) -> None:
    # given: cases written in bulk, without the signals that keep their documents
    Case.objects.bulk_create([Case(title="Imported bridge", claim="Old.", created_by=people["analyst"])])
    assert _titles(_search(people["analyst"], q="bridge")) == []
    out = StringIO()
    # when
    call_command("rebuild_search_index", stdout=out)
    # then
    assert _titles(_search(people["analyst"], q="bridge")) == ["Imported bridge"]
    assert out.getvalue() == "Rebuilt the search documents of 1 cases.\n"
