"""The seen-before banner and list filter on the reviewer's desk: recycled footage, shown loudly.

The rendering and permission tests store media, keyframe and match rows directly (the matching
itself is tested in verify_tests/test_similarity.py); the pipeline tests submit generated
footage to a real worker and look at what the reviewer sees, in the test client and in Chromium.
"""

from __future__ import annotations

import datetime
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ROOT, analysed, make_user, token_client
from tests.verify_tests.test_similarity_evaluation import clip_original, variant
from tests.workflows_tests.test_admin import CHANGELIST, change_url, logged_in, open_case, page
from tests.workflows_tests.test_admin_browser import (  # noqa: F401 (browser is a fixture)
    CHROMEDRIVER,
    CHROMIUM,
    WAIT_S,
    blur_of,
    browser,
    log_in,
    save_full_page,
)
from verify.models import Keyframe, MediaItem, MediaMatch
from workflows.models import Case, ReviewerPreference

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "analyst": make_user("ana", "analyst", is_staff=True),
        "analyst2": make_user("ana2", "analyst", is_staff=True),
        "reviewer": make_user("rev", "reviewer", is_staff=True),
    }


def media_rows(case: Case, uploader: Any, *, sha: str, times: tuple[float, ...], days_ago: int = 0) -> MediaItem:
    """A media item with keyframes at the given times, as the pipeline leaves them (no files)."""
    item = MediaItem.objects.create(
        case=case,
        original=f"originals/{sha}.bin",
        size_bytes=10,
        sha256=sha * 64 if len(sha) == 1 else sha,
        uploaded_by=uploader,
        state="succeeded",
    )
    MediaItem.objects.filter(pk=item.pk).update(uploaded_at=timezone.now() - datetime.timedelta(days=days_ago))
    item.refresh_from_db()
    for second in times:
        Keyframe.objects.create(
            media_item=item, timestamp_s=second, image=f"k/{item.pk}-{second}.jpg", width=64, height=36, phash="0" * 16
        )
    return item


def match_rows(item: MediaItem, other: MediaItem, pairs: list[list[float]], **fields: Any) -> None:
    """Store a match from both sides, as verify.similarity.matching does."""
    common = {"similarity": 0.91, "matched_frame_count": len(pairs), "mirrored": False, "exact": False, **fields}
    MediaMatch.objects.create(media_item=item, other=other, frame_pairs=pairs, time_offset_s=pairs[0][0] - pairs[0][1],
                              **common)  # fmt: skip
    MediaMatch.objects.create(media_item=other, other=item, frame_pairs=[[b, a] for a, b in pairs],
                              time_offset_s=pairs[0][1] - pairs[0][0], **common)  # fmt: skip


def keyframe_url(item: MediaItem, timestamp_s: float) -> str:
    return reverse("keyframe-image", args=[Keyframe.objects.get(media_item=item, timestamp_s=timestamp_s).pk])


def banner(html: str) -> str:
    """Return the seen-before banner's HTML, or "" when the page has none."""
    found = re.search(r'<section class="seen-before".*?</section>', html, re.S)
    return found.group(0) if found else ""


def side_by_side(html: str) -> list[list[str]]:
    """Return, per matched pair in the banner, the image URLs from left to right."""
    chunks = banner(html).split('<div class="seen-pair">')[1:]
    return [re.findall(r'<img src="([^"]+)"', chunk) for chunk in chunks]


def listed_titles(html: str) -> set[str]:
    return set(re.findall(r'<th class="field-title"><a [^>]*>([^<]+)</a>', html))


@pytest.fixture
def recycled(people) -> dict[str, Any]:
    """An archived, closed case and a new case whose clip is an excerpt of it (4 s in)."""
    archived = open_case(people["analyst2"], title="Shelling of the market, March 2022", status="closed")
    Case.objects.filter(pk=archived.pk).update(verdict="authentic")
    archived.refresh_from_db()
    old = media_rows(archived, people["analyst2"], sha="a", times=(0.0, 4.0, 6.5, 9.0, 12.0), days_ago=700)
    new_case = open_case(people["analyst"], title="Strike yesterday near the border", status="ready_for_review")
    new = media_rows(new_case, people["analyst"], sha="b", times=(0.0, 2.5, 5.0))
    match_rows(new, old, [[0.0, 4.0], [2.5, 6.5], [5.0, 9.0]])
    return {"archived": archived, "old": old, "case": new_case, "new": new}


# --- the banner ------------------------------------------------------------------------------


def test_seen_before_banner_names_the_earlier_case_above_the_claim(people, recycled):
    html = page(logged_in(people["reviewer"]).get(change_url(recycled["case"])))

    shown = banner(html)
    assert shown, "no seen-before banner"
    # loud, and first: above the claim and the evidence
    assert html.index('class="seen-before"') < html.index('id="claim"')
    assert 'role="alert"' in shown
    assert "Seen before:" in shown and "this footage is also in 1 other case" in shown
    # the earlier case: linked, with its title, status, verdict and when it was submitted
    archived = recycled["archived"]
    assert f'href="{change_url(archived)}"' in shown
    assert f"Case {archived.pk}: Shelling of the market, March 2022" in shown
    assert "Closed" in shown and "Authentic: the footage shows what is claimed" in shown
    assert "Earlier" in shown and f"before this case's media #{recycled['new'].pk}" in shown
    assert "1\xa0year" in shown  # submitted about two years earlier
    # how alike: similarity, matched frames, not mirrored, not the same bytes
    assert "91 %" in shown and "3 matched frames" in shown
    assert "Near-duplicate" in shown and "Exact duplicate" not in shown and "Mirrored" not in shown


def test_seen_before_banner_shows_matched_keyframes_side_by_side_and_blurred(people, recycled):
    new, old = recycled["new"], recycled["old"]

    html = page(logged_in(people["reviewer"]).get(change_url(recycled["case"])))

    # this item's keyframe on the left, the archived item's on the right, each pair in time order
    assert side_by_side(html) == [
        [keyframe_url(new, 0.0), keyframe_url(old, 4.0)],
        [keyframe_url(new, 2.5), keyframe_url(old, 6.5)],
        [keyframe_url(new, 5.0), keyframe_url(old, 9.0)],
    ]
    shown = banner(html)
    for this_time, other_time in (("0:00.000", "0:04.000"), ("0:02.500", "0:06.500"), ("0:05.000", "0:09.000")):
        assert shown.index(this_time) < shown.index(other_time)
    # compact: one pair in view, the others folded in a <details> that opens without script
    in_view, folded = shown.split('<details class="seen-more">')
    assert in_view.count('<div class="seen-pair">') == 1 and folded.count('<div class="seen-pair">') == 2
    assert "<summary>Show all 3 matched frames</summary>" in folded
    # blurred like the keyframe grid, with the same reveal controls
    assert shown.count('class="kf-blur"') == 6
    assert "data-reveal-all=" in shown
    assert "reveal-keyframes" not in html.split("<body", 1)[1].split(">", 1)[0]


def test_seen_before_banner_honours_the_reviewers_reveal_preference(people, recycled):
    ReviewerPreference.objects.create(user=people["reviewer"], reveal_keyframes=True)

    html = page(logged_in(people["reviewer"]).get(change_url(recycled["case"])))

    assert "reveal-keyframes" in html.split("<body", 1)[1].split(">", 1)[0]
    assert len(side_by_side(html)) == 3
    assert "data-reveal-all=" not in banner(html)


def test_seen_before_banner_on_the_archived_case_names_the_later_copy(people, recycled):
    html = page(logged_in(people["reviewer"]).get(change_url(recycled["archived"])))

    shown = banner(html)
    assert "Recycled footage:" in shown and "Later" in shown
    assert "Strike yesterday near the border" in shown
    assert side_by_side(html)[0] == [keyframe_url(recycled["old"], 4.0), keyframe_url(recycled["new"], 0.0)]


def test_seen_before_banner_flags_an_exact_duplicate_by_its_sha256(people, recycled):
    # given: the same bytes submitted again in a third case, before any match was stored
    old = recycled["old"]
    again = open_case(people["analyst"], title="Same file, new caption")
    copy = media_rows(again, people["analyst"], sha="a", times=(0.0, 4.0, 6.5, 9.0, 12.0))
    MediaItem.objects.filter(pk=copy.pk).update(duplicate_of=old)

    html = page(logged_in(people["reviewer"]).get(change_url(again)))

    shown = banner(html)
    assert "Exact duplicate · same SHA-256" in shown and "100 %" in shown
    assert "Shelling of the market, March 2022" in shown
    # the same bytes give the same keyframes: shown at the same moments
    assert side_by_side(html) == [[keyframe_url(copy, t), keyframe_url(old, t)] for t in (0.0, 4.0, 6.5, 9.0, 12.0)]
    assert "5 matched frames" in shown
    assert "Same bytes as" not in html  # the evidence panel names only duplicates in this case


def test_seen_before_banner_flags_mirrored_footage(people, recycled):
    flipped_case = open_case(people["analyst"], title="Mirrored repost")
    flipped = media_rows(flipped_case, people["analyst"], sha="c", times=(1.0, 3.5, 6.0))
    match_rows(flipped, recycled["old"], [[1.0, 4.0], [3.5, 6.5], [6.0, 9.0]], mirrored=True, similarity=0.84)

    shown = banner(page(logged_in(people["reviewer"]).get(change_url(flipped_case))))

    assert "Mirrored" in shown and "<strong>mirrored</strong>" in shown and "84 %" in shown


def test_seen_before_no_banner_for_footage_seen_nowhere_else(people, recycled):
    lone = open_case(people["analyst"], title="Fresh footage")
    first = media_rows(lone, people["analyst"], sha="d", times=(0.0,))
    second = media_rows(lone, people["analyst"], sha="d", times=(0.0,))
    MediaItem.objects.filter(pk=second.pk).update(duplicate_of=first)

    html = page(logged_in(people["reviewer"]).get(change_url(lone)))

    assert banner(html) == "" and "Seen before" not in html
    assert "Same bytes as" in html and f"media #{first.pk} of this case" in html


# --- permissions -----------------------------------------------------------------------------


def test_seen_before_an_analyst_never_learns_of_a_case_they_may_not_see(people, recycled):
    # given: the analyst's case matches a case of another analyst (hidden from them), by
    # similar frames and by the same bytes, and one of their own cases (visible to them)
    analyst, old = people["analyst"], recycled["old"]
    hidden_copy = media_rows(recycled["case"], analyst, sha="a", times=(0.0,))
    MediaItem.objects.filter(pk=hidden_copy.pk).update(duplicate_of=old)
    own = open_case(analyst, title="My earlier upload")
    own_item = media_rows(own, analyst, sha="e", times=(0.0, 2.5, 5.0), days_ago=3)
    match_rows(recycled["new"], own_item, [[0.0, 0.0], [2.5, 2.5], [5.0, 5.0]])
    client = logged_in(analyst)

    # when
    html = page(client.get(change_url(recycled["case"])))
    yes = page(client.get(CHANGELIST, {"seen_before": "yes"}))

    # then: only their own case is named; nothing about the hidden one
    shown = banner(html)
    assert "this footage is also in 1 other case" in shown and "My earlier upload" in shown
    assert "Shelling" not in html and change_url(recycled["archived"]) not in html
    assert f"media #{old.pk}" not in html and "Same bytes as" not in html and "Exact duplicate" not in html
    for keyframe in old.keyframes.all():
        assert reverse("keyframe-image", args=[keyframe.pk]) not in html
    assert listed_titles(yes) == {"Strike yesterday near the border", "My earlier upload"}
    # and with their own match gone, no banner and no marker at all
    MediaMatch.objects.filter(other=own_item).delete()
    MediaMatch.objects.filter(media_item=own_item).delete()
    html = page(client.get(change_url(recycled["case"])))
    assert banner(html) == "" and "Seen before" not in html and "Shelling" not in html
    assert "Strike yesterday near the border" not in listed_titles(page(client.get(CHANGELIST, {"seen_before": "yes"})))
    assert "Strike yesterday near the border" in listed_titles(page(client.get(CHANGELIST, {"seen_before": "no"})))
    assert 'class="seen-badge"' not in page(client.get(CHANGELIST))
    # while a reviewer, who sees every case, is told of both
    assert "Shelling of the market" in banner(page(logged_in(people["reviewer"]).get(change_url(recycled["case"]))))


# --- the case list ---------------------------------------------------------------------------


def test_seen_before_list_filter_and_marker(people, recycled):
    # given: an exact copy by SHA-256 only, footage seen nowhere else, a case without media,
    # and a case holding the same bytes twice (that is not "seen before" elsewhere)
    analyst = people["analyst"]
    media_rows(open_case(analyst, title="Same file, new caption"), analyst, sha="a", times=())
    media_rows(open_case(analyst, title="Fresh footage"), analyst, sha="f", times=(0.0,))
    open_case(analyst, title="No media yet")
    twice = open_case(analyst, title="Uploaded twice")
    media_rows(twice, analyst, sha="9", times=())
    media_rows(twice, analyst, sha="9", times=())
    client = logged_in(people["reviewer"])

    # when
    everything = page(client.get(CHANGELIST))
    yes = page(client.get(CHANGELIST, {"seen_before": "yes"}))
    no = page(client.get(CHANGELIST, {"seen_before": "no"}))

    # then
    seen = {"Shelling of the market, March 2022", "Strike yesterday near the border", "Same file, new caption"}
    assert listed_titles(yes) == seen
    assert listed_titles(no) == {"Fresh footage", "No media yet", "Uploaded twice"}
    assert "By seen before" in everything and "?seen_before=yes" in everything
    assert everything.count('class="seen-badge"') == 3
    assert "column-seen_before_marker" in everything


def test_seen_before_list_makes_a_constant_number_of_queries(people):
    client = logged_in(people["reviewer"])
    analyst = people["analyst"]

    def add_recycled_pair(index: int) -> None:
        first = media_rows(open_case(analyst, title=f"old {index}"), analyst, sha=f"{2 * index:064x}", times=(0.0,))
        second = media_rows(open_case(analyst, title=f"new {index}"), analyst, sha=f"{2 * index + 1:064x}",
                            times=(0.0,))  # fmt: skip
        match_rows(second, first, [[0.0, 0.0]])

    def queries_for(params: dict[str, str]) -> int:
        with CaptureQueriesContext(connection) as captured:
            page(client.get(CHANGELIST, params))
        return len(captured.captured_queries)

    add_recycled_pair(0)
    with_two = [queries_for({}), queries_for({"seen_before": "yes"})]
    for index in range(1, 5):
        add_recycled_pair(index)
    with_ten = [queries_for({}), queries_for({"seen_before": "yes"})]

    assert with_ten == with_two


# --- through the real pipeline ---------------------------------------------------------------


def submit_recycled_footage(footage_dir: Path) -> dict[str, Any]:
    """Archive a clip, submit the same file again and a re-encoded 360p excerpt of it; return them."""
    original = clip_original(footage_dir / "seen-original.mp4")
    reposted = variant(original, footage_dir / "seen-reposted.mp4", "reposted")
    api = token_client(make_user("ana", "analyst"))
    archived = analysed(api, original, title="Shelling of the market, March 2022", claim="Filmed on 3 March 2022.")
    again = analysed(api, original, title="Market strike, posted again", claim="Posted as filmed last week.")
    copy = analysed(api, reposted, title="Strike yesterday near the border", claim="Posted as filmed yesterday.")
    return {"archived": archived, "again": again, "copy": copy}


@pytest.mark.worker
def test_seen_before_pipeline_exact_and_near_copies_show_the_earlier_case(worker, footage_dir):
    # given: the real worker has analysed the original, a byte-identical resubmission and a repost
    submitted = submit_recycled_footage(footage_dir)
    reviewer = make_user("rev", "reviewer", is_staff=True)
    client = logged_in(reviewer)
    cases = {name: Case.objects.get(pk=detail["case"]) for name, detail in submitted.items()}

    # when
    copy_page = page(client.get(change_url(cases["copy"])))
    again_page = page(client.get(change_url(cases["again"])))
    yes = page(client.get(CHANGELIST, {"seen_before": "yes"}))

    # then: the repost names both earlier cases, with its matched keyframes next to theirs
    shown = banner(copy_page)
    assert "Seen before:" in shown and "this footage is also in 2 other cases" in shown
    for name in ("archived", "again"):
        assert f'href="{change_url(cases[name])}"' in shown and cases[name].title in shown
    assert "Near-duplicate" in shown
    match = MediaMatch.objects.get(media_item_id=submitted["copy"]["id"], other_id=submitted["archived"]["id"])
    assert match.matched_frame_count >= 3 and f"{match.matched_frame_count} matched frames" in shown
    copy_item = MediaItem.objects.get(pk=submitted["copy"]["id"])
    archived_item = MediaItem.objects.get(pk=submitted["archived"]["id"])
    pairs = side_by_side(copy_page)
    for this_time, other_time in match.frame_pairs:
        assert [keyframe_url(copy_item, this_time), keyframe_url(archived_item, other_time)] in pairs
    # the resubmitted file is an exact duplicate of the archived one
    assert "Exact duplicate · same SHA-256" in banner(again_page) and cases["archived"].title in banner(again_page)
    # and the list filter finds all three
    assert listed_titles(yes) == {case.title for case in cases.values()}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "admin-seen-before.html").write_text(copy_page)


@pytest.mark.worker
@pytest.mark.timeout(600)
@pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)), reason="needs chromium and chromium-driver"
)
def test_seen_before_banner_in_the_browser(worker, live_server, browser, footage_dir):  # noqa: F811
    # given
    submitted = submit_recycled_footage(footage_dir)
    reviewer = make_user("rev", "reviewer", is_staff=True)
    case = Case.objects.get(pk=submitted["copy"]["case"])

    # when: the reviewer opens the repost's case
    log_in(browser, live_server.url, reviewer, change_url(case))

    # then: the banner is the first thing on the page, in red, with blurred keyframes side by side
    shown = browser.find_element(By.ID, "seen-before")
    claim = browser.find_element(By.ID, "claim")
    assert shown.location["y"] < claim.location["y"]
    assert shown.location["y"] < 250 and shown.size["height"] > 200
    assert "Shelling of the market, March 2022" in shown.text
    assert str(browser.execute_script("return getComputedStyle(arguments[0]).borderLeftColor", shown)) == (
        "rgb(179, 0, 27)"
    )
    pair = shown.find_element(By.CSS_SELECTOR, ".seen-pair")
    left, right = pair.find_elements(By.CSS_SELECTOR, ".kf-blur img")
    assert left.location["y"] == right.location["y"] and left.location["x"] < right.location["x"]
    assert "blur" in blur_of(browser, left)
    save_full_page(browser, ARTIFACTS / "admin-seen-before-blurred.png")
    # a click on "reveal all" shows the matched keyframes
    shown.find_element(By.CSS_SELECTOR, "[data-reveal-all]").click()
    WebDriverWait(browser, WAIT_S).until(lambda _: blur_of(browser, left) == blur_of(browser, right) == "none")
    screenshot = ARTIFACTS / "admin-seen-before.png"
    save_full_page(browser, screenshot)
    assert screenshot.stat().st_size > 10_000
