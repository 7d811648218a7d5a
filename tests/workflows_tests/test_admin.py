"""The reviewer's desk in the admin, through Django's test client: what each user sees and can do."""

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests import media
from tests.conftest import make_user, submit, token_client
from verify.analysis import analysis_run
from verify.models import Keyframe, MediaItem
from workflows import services
from workflows.models import AuditEvent, Case, ChecklistItem, Note, ReviewerPreference

CHANGELIST = "/admin/workflows/case/"


def change_url(case: Case) -> str:
    return reverse("admin:workflows_case_change", args=[case.pk])


def desk_url(case: Case, name: str) -> str:
    return reverse(f"admin:workflows_case_{name}", args=[case.pk])


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "analyst": make_user("ana", "analyst", is_staff=True),
        "analyst2": make_user("ana2", "analyst", is_staff=True),
        "reviewer": make_user("rev", "reviewer", is_staff=True),
        "reviewer2": make_user("rev2", "reviewer", is_staff=True),
        "lead": make_user("lea", "lead", is_staff=True),
        "staff": make_user("staff", is_staff=True),
    }


@pytest.fixture(scope="session")
def tagged_clip(shots_clip: Path, footage_dir: Path) -> Path:
    """The shots clip with a creation time and an ISO 6709 location, as a phone would write them."""
    tags = {"creation_time": "2024-03-02T10:15:00.000000Z", "location": "+50.4253+036.8949/"}
    return media.with_metadata(shots_clip, footage_dir / "tagged.mp4", tags)


@pytest.fixture
def analysed_case(people, tagged_clip, django_capture_on_commit_callbacks) -> Case:
    """A case the analyst opened with one clip, analysed by the real pipeline in this process."""
    response = submit(
        token_client(people["analyst"]),
        tagged_clip,
        title="Soldiers in a border village",
        claim="Posted on Telegram as filmed yesterday in the village square.",
        source_url="https://t.me/example/1",
    )
    assert response.status_code == 202, response.content
    with django_capture_on_commit_callbacks(execute=True):
        analysis_run(media_item_id=response.json()["id"])
    case = Case.objects.get(pk=response.json()["case"])
    assert case.status == "ready_for_review"
    return case


def open_case(owner: Any, title: str = "Claimed strike", status: str = "") -> Case:
    case = services.case_create(title=title, claim="Shows a strike on the bridge.", created_by=owner)
    if status:
        Case.objects.filter(pk=case.pk).update(status=status)
        case.refresh_from_db()
    return case


def add_evidence_rows(case: Case, uploader: Any, *, index: int) -> MediaItem:
    """Media and keyframe rows as the pipeline leaves them (for counting queries, no files needed)."""
    item = MediaItem.objects.create(
        case=case,
        original=f"originals/{index}.bin",
        size_bytes=10,
        sha256=f"{index:064x}",
        uploaded_by=uploader,
        state="succeeded",
    )
    for second in (0.0, 2.0):
        Keyframe.objects.create(
            media_item=item, timestamp_s=second, image=f"k/{index}-{second}.jpg", width=32, height=24, phash="0" * 16
        )
    return item


def move_buttons(html: str) -> set[str]:
    return {name for name in ("take", "propose", "approve", "send_back", "reopen", "hold", "resume") if
            f'data-move="{name}"' in html}  # fmt: skip


# --- the case list ---------------------------------------------------------------------------


def test_case_list_shows_columns_filters_and_a_blurred_thumbnail(people, analysed_case):
    assigned = open_case(people["analyst"], title="Assigned claim")
    Case.objects.filter(pk=assigned.pk).update(assignee=people["reviewer2"])

    html = page(logged_in(people["reviewer"]).get(CHANGELIST))

    assert "Soldiers in a border village" in html
    for column in ("column-status", "column-verdict", "column-assignee", "column-age", "column-media_count"):
        assert column in html
    assert "Ready for review" in html
    assert '<td class="field-media_count">1</td>' in html
    keyframe = Keyframe.objects.filter(media_item__case=analysed_case).order_by("timestamp_s").first()
    assert keyframe is not None
    assert f'class="kf-blur kf-thumb" href="{reverse("keyframe-image", args=[keyframe.pk])}"' in html
    # filters by status, verdict and assignee
    assert "By status" in html and "By verdict" in html and "By assignee" in html
    filtered = page(logged_in(people["reviewer"]).get(CHANGELIST, {"status__exact": "closed"}))
    assert "Soldiers in a border village" not in filtered
    # the blur comes from the desk's stylesheet and script
    assert "workflows/desk.css" in html and "workflows/desk.js" in html


def test_case_list_search_by_sha256_finds_the_case(people, analysed_case):
    open_case(people["analyst"], title="Another claim")
    sha256 = analysed_case.media_items.get().sha256
    client = logged_in(people["reviewer"])

    full = page(client.get(CHANGELIST, {"q": sha256}))
    prefix = page(client.get(CHANGELIST, {"q": sha256[:12]}))
    other = page(client.get(CHANGELIST, {"q": "f" * 64}))

    for html in (full, prefix):
        assert "Soldiers in a border village" in html
        assert "Another claim" not in html
    assert "Soldiers in a border village" not in other
    assert "Soldiers" in page(client.get(CHANGELIST, {"q": "t.me/example"}))
    assert "Soldiers" in page(client.get(CHANGELIST, {"q": "village square"}))


def test_case_list_makes_a_constant_number_of_queries(people):
    client = logged_in(people["reviewer"])

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            page(client.get(CHANGELIST))
        return len(captured.captured_queries)

    for index in range(2):
        case = open_case(people["analyst"], title=f"claim {index}")
        add_evidence_rows(case, people["analyst"], index=index)
    with_two = queries_for_list()
    for index in range(2, 8):
        case = open_case(people["analyst"], title=f"claim {index}")
        Case.objects.filter(pk=case.pk).update(assignee=people["reviewer"] if index % 2 else people["reviewer2"])
        add_evidence_rows(case, people["analyst"], index=index)
    with_eight = queries_for_list()

    assert with_eight == with_two


# --- the case page ---------------------------------------------------------------------------


def test_case_page_shows_claim_keyframes_metadata_checklist_history_and_moves(people, analysed_case):
    item = analysed_case.media_items.get()
    keyframes = list(item.keyframes.order_by("timestamp_s"))

    html = page(logged_in(people["reviewer"]).get(change_url(analysed_case)))

    assert "Posted on Telegram as filmed yesterday in the village square." in html
    assert item.sha256 in html
    assert "Analysis: <strong>Succeeded</strong>" in html
    # the keyframe grid: every frame, blurred, linking to the full-size image, with its time
    assert html.count('class="kf-tile"') == len(keyframes) >= 4
    for keyframe in keyframes:
        assert f'href="{reverse("keyframe-image", args=[keyframe.pk])}"' in html
    assert "0:00.000" in html and "0:02.000" in html
    assert "reveal-keyframes" not in html.split("<body", 1)[1].split(">", 1)[0]
    assert reverse("mediaitem-contact-sheet", args=[item.pk]) in html
    assert reverse("mediaitem-original", args=[item.pk]) in html
    # the metadata panel: creation time with its source tag, the location with a map link
    assert "2024-03-02T10:15:00+00:00" in html
    assert "creation_time" in html
    assert "https://www.openstreetmap.org/?mlat=50.425300&amp;mlon=36.894900" in html
    assert "320×240" in html and "h264" in html
    # the checklist, the notes form and the history
    assert html.count('class="checklist-item') == 5
    assert 'action="' + desk_url(analysed_case, "note") + '"' in html
    for action in ("Case opened", "Media submitted", "Analysis finished", "Transition"):
        assert action in html
    # only the moves a reviewer may make on a case ready for review
    assert move_buttons(html) == {"take", "hold"}


def test_case_page_offers_each_user_only_their_moves(people):
    case = open_case(people["analyst"])
    Case.objects.filter(pk=case.pk).update(
        status="verdict_proposed", verdict="inconclusive", verdict_proposed_by=people["reviewer"]
    )

    as_proposer = page(logged_in(people["reviewer"]).get(change_url(case)))
    as_lead = page(logged_in(people["lead"]).get(change_url(case)))
    as_analyst = page(logged_in(people["analyst"]).get(change_url(case)))

    assert move_buttons(as_proposer) == {"hold"}
    assert move_buttons(as_lead) == {"approve", "send_back", "hold"}
    assert move_buttons(as_analyst) == set()
    assert "There is no move you can make on this case now." in as_analyst
    # only a lead gets the assignment form; only reviewers and leads an editable checklist
    assert desk_url(case, "assign") in as_lead and desk_url(case, "assign") not in as_proposer
    assert 'name="provenance-state"' in as_proposer and 'name="provenance-state"' not in as_analyst


# --- acting through the admin ----------------------------------------------------------------


def test_a_transition_in_the_admin_goes_through_the_service(people, analysed_case):
    client = logged_in(people["reviewer"])

    response = client.post(
        desk_url(analysed_case, "transition"), {"to": "in_review", "version": analysed_case.version}, follow=True
    )

    analysed_case.refresh_from_db()
    assert (analysed_case.status, analysed_case.assignee) == ("in_review", people["reviewer"])
    event = AuditEvent.objects.filter(case=analysed_case, action="transition").last()
    assert event is not None
    assert (event.actor, event.before["status"], event.after["status"]) == (people["reviewer"], "ready_for_review",
                                                                            "in_review")  # fmt: skip
    html = page(response)
    assert "The case is now: In review." in html
    assert move_buttons(html) == {"propose", "hold"}


def test_an_illegal_transition_shows_an_error_and_changes_nothing(people):
    case = open_case(people["analyst"], status="ready_for_review")
    events_before = AuditEvent.objects.filter(case=case).count()

    response = logged_in(people["reviewer"]).post(desk_url(case, "transition"), {"to": "closed"}, follow=True)

    html = page(response)
    assert "A case that is ready_for_review cannot move to closed." in html
    assert "The buttons on the case page are the moves you may make now." in html
    assert move_buttons(html) == {"take", "hold"}
    case.refresh_from_db()
    assert case.status == "ready_for_review"
    assert AuditEvent.objects.filter(case=case).count() == events_before


def test_proposing_in_the_admin_needs_a_rationale_and_the_checklist(people):
    case = open_case(people["analyst"], status="in_review")
    client = logged_in(people["reviewer"])
    url = desk_url(case, "transition")

    no_rationale = page(client.post(url, {"to": "verdict_proposed", "verdict": "inconclusive"}, follow=True))
    gated = page(
        client.post(url, {"to": "verdict_proposed", "verdict": "manipulated", "rationale": "Spliced."}, follow=True)
    )
    case.refresh_from_db()
    assert case.status == "in_review"
    proposed = page(
        client.post(
            url, {"to": "verdict_proposed", "verdict": "inconclusive", "rationale": "No earlier copy."}, follow=True
        )
    )

    assert "A proposed verdict needs a rationale." in no_rationale
    assert "mark date, location, provenance as done or not applicable" in gated
    case.refresh_from_db()
    assert (case.status, case.verdict, case.verdict_proposed_by) == ("verdict_proposed", "inconclusive",
                                                                     people["reviewer"])  # fmt: skip
    assert "Inconclusive" in proposed


def test_a_transition_from_a_stale_page_is_refused(people):
    case = open_case(people["analyst"], status="ready_for_review")
    stale_version = case.version
    services.case_transition(case=case, to="in_review", actor=people["reviewer2"])

    html = page(
        logged_in(people["reviewer"]).post(
            desk_url(case, "transition"),
            {"to": "on_hold", "note": "Waiting for the source.", "version": stale_version},
            follow=True,
        )
    )

    assert "Someone else changed this case just now" in html
    case.refresh_from_db()
    assert case.status == "in_review"


def test_notes_are_added_in_place_and_new_versions_keep_the_old(people, analysed_case):
    client = logged_in(people["reviewer"])
    item = analysed_case.media_items.get()

    added = client.post(
        desk_url(analysed_case, "note"),
        {"body": "Shadows point north-west.", "media_item": item.pk, "timestamp_s": "2.0"},
        follow=True,
    )
    note = Note.objects.get(case=analysed_case)
    versioned = client.post(
        reverse("admin:workflows_case_note_version", args=[analysed_case.pk, note.pk]),
        {"body": "Shadows point north-east."},
        follow=True,
    )
    by_someone_else = logged_in(people["reviewer2"]).post(
        reverse("admin:workflows_case_note_version", args=[analysed_case.pk, note.pk]), {"body": "mine"}, follow=True
    )
    empty = client.post(desk_url(analysed_case, "note"), {"body": "  "}, follow=True)

    assert "Note added." in page(added)
    assert (note.author, note.media_item, note.timestamp_s) == (people["reviewer"], item, 2.0)
    html = page(versioned)
    assert "Shadows point north-east." in html
    assert "Earlier versions (1)" in html and "Shadows point north-west." in html
    assert "Only the author of a note may write a new version of it." in page(by_someone_else)
    assert "Note: This field is required." in page(empty)
    assert list(Note.objects.filter(case=analysed_case).values_list("body", flat=True)) == [
        "Shadows point north-west.",
        "Shadows point north-east.",
    ]
    assert AuditEvent.objects.filter(case=analysed_case, action__in=["note_added", "note_edited"]).count() == 2


def test_the_checklist_is_saved_through_the_service(people):
    case = open_case(people["analyst"], status="in_review")
    client = logged_in(people["reviewer"])
    form = {
        f"{key}-{field}": value
        for key in ChecklistItem.Key.values
        for field, value in (("state", "open"), ("finding", ""), ("latitude", ""), ("longitude", ""))
    }

    saved = client.post(
        desk_url(case, "checklist"),
        {**form, "location-state": "done", "location-finding": "The mosque's minaret matches.",
         "location-latitude": "50.4253", "location-longitude": "36.8949"},
        follow=True,
    )  # fmt: skip
    out_of_range = client.post(
        desk_url(case, "checklist"),
        {**form, "location-state": "done", "location-finding": "x", "location-latitude": "95",
         "location-longitude": "0"},
        follow=True,
    )  # fmt: skip
    by_analyst = logged_in(people["analyst"]).post(
        desk_url(case, "checklist"), {**form, "date-state": "done"}, follow=True
    )

    assert "Checklist: location saved." in page(saved)
    location = ChecklistItem.objects.get(case=case, key="location")
    assert (location.state, location.latitude, location.longitude, location.updated_by) == (
        "done",
        50.4253,
        36.8949,
        people["reviewer"],
    )
    assert AuditEvent.objects.filter(case=case, action="checklist_changed").count() == 1
    assert "Latitude must be within ±90 and longitude within ±180." in page(out_of_range)
    assert "Only reviewers and leads work the checklist." in page(by_analyst)
    assert ChecklistItem.objects.get(case=case, key="date").state == "open"
    assert "https://www.openstreetmap.org/?mlat=50.425300" in page(saved)


def test_a_lead_assigns_a_reviewer_and_a_reviewer_cannot(people):
    case = open_case(people["analyst"], status="ready_for_review")

    by_reviewer = logged_in(people["reviewer"]).post(
        desk_url(case, "assign"), {"assignee": people["reviewer2"].pk}, follow=True
    )
    by_lead = logged_in(people["lead"]).post(desk_url(case, "assign"), {"assignee": people["reviewer"].pk}, follow=True)

    assert "Only a lead may assign cases." in page(by_reviewer)
    assert "Assigned to rev." in page(by_lead)
    case.refresh_from_db()
    assert (case.assignee, case.status) == (people["reviewer"], "in_review")
    assert list(case.assignments.values_list("assignee__username", "assigned_by__username")) == [("rev", "lea")]


def test_the_keyframe_preference_unblurs_every_case_for_that_reviewer(people, analysed_case):
    client = logged_in(people["reviewer"])
    url = reverse("admin:workflows_case_keyframe_preference")

    client.post(url, {"next": change_url(analysed_case)})
    revealed = page(client.get(change_url(analysed_case)))
    other_reviewer = page(logged_in(people["reviewer2"]).get(change_url(analysed_case)))
    back = client.post(url, {"next": "https://elsewhere.example/"})

    assert 'class="' in revealed and "reveal-keyframes" in revealed.split("<body", 1)[1].split(">", 1)[0]
    assert "reveal-keyframes" not in other_reviewer.split("<body", 1)[1].split(">", 1)[0]
    assert back.status_code == 302 and back["Location"] == CHANGELIST
    assert ReviewerPreference.objects.get(user=people["reviewer"]).reveal_keyframes is False


# --- who sees what, and nothing deletes ------------------------------------------------------


def test_an_analyst_cannot_see_another_analysts_case(people):
    case = open_case(people["analyst"], title="Ana's claim")
    other = logged_in(people["analyst2"])

    listing = page(other.get(CHANGELIST))
    detail = other.get(change_url(case))
    posts = [
        other.post(desk_url(case, "transition"), {"to": "on_hold", "note": "x"}),
        other.post(desk_url(case, "note"), {"body": "x"}),
        other.post(desk_url(case, "checklist"), {"date-state": "done"}),
        other.post(desk_url(case, "assign"), {"assignee": people["reviewer"].pk}),
    ]

    assert "Ana&#x27;s claim" not in listing
    assert detail.status_code == 302 and detail["Location"] == reverse("admin:index")
    assert [response.status_code for response in posts] == [404, 404, 404, 404]
    assert not Note.objects.filter(case=case).exists()
    assert "Ana&#x27;s claim" in page(logged_in(people["analyst"]).get(CHANGELIST))
    # the media evidence pages are scoped the same way
    item = add_evidence_rows(case, people["analyst"], index=1)
    media_page = reverse("admin:verify_mediaitem_change", args=[item.pk])
    assert other.get(media_page).status_code == 302
    assert item.sha256 not in page(other.get("/admin/verify/mediaitem/"))
    assert item.sha256 in page(logged_in(people["reviewer"]).get(media_page))
    # staff without a workflow role see no cases at all
    assert logged_in(people["staff"]).get(CHANGELIST).status_code == 403
    assert logged_in(people["staff"]).post(desk_url(case, "note"), {"body": "x"}).status_code == 404


def test_nothing_can_be_deleted_or_edited_in_the_admin(people, analysed_case):
    client = logged_in(people["lead"])
    item = analysed_case.media_items.get()

    listing = page(client.get(CHANGELIST))
    delete = client.post(reverse("admin:workflows_case_delete", args=[analysed_case.pk]), {"post": "yes"})
    edit = client.post(change_url(analysed_case), {"title": "rewritten", "claim": "rewritten"})
    media_delete = client.post(reverse("admin:verify_mediaitem_delete", args=[item.pk]), {"post": "yes"})

    assert 'name="action"' not in listing
    assert delete.status_code == 403 and media_delete.status_code == 403
    assert edit.status_code == 403
    analysed_case.refresh_from_db()
    assert analysed_case.title == "Soldiers in a border village"
    # notes and audit events have no admin pages at all: the case page shows them read-only
    assert client.get("/admin/workflows/note/").status_code == 404
    assert client.get("/admin/workflows/auditevent/").status_code == 404
    assert 'href="' + reverse("admin:workflows_case_add") + '"' not in listing
