"""Evidence of a match in the API and on the desk: frame pairs side by side, the transformation found, the similarity.

The pipeline tests submit real footage (a shot panned over a photograph, tests.footage) and its
reposts to a real worker, then read ``GET /media/{id}/matches/`` and the case page. The
rendering tests store media, keyframe and match rows directly, as test_admin_seen_before does,
for the cases the generated footage does not pin down (a dense pair between keyframes, the
soundtrack alone).
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import analysed, make_user, matches_of, token_client
from tests.footage import STILL_AT_S, photo_shot, repost
from tests.photos import photograph
from tests.workflows_tests.test_admin import change_url, logged_in, open_case, page
from tests.workflows_tests.test_admin_browser import (  # noqa: F401 (browser is a fixture)
    CHROMEDRIVER,
    CHROMIUM,
    WAIT_S,
    browser,
    log_in,
    save_full_page,
)
from tests.workflows_tests.test_admin_seen_before import (
    ARTIFACTS,
    banner,
    keyframe_url,
    match_rows,
    media_rows,
    side_by_side,
)
from verify.models import Keyframe, MediaItem, MediaMatch
from workflows import match_evidence
from workflows.exports.report import report_html
from workflows.models import Case


def codes(match: dict[str, Any]) -> list[str]:
    return [t["code"] for t in match["transformations"]]


def chips(html: str) -> list[tuple[str, str]]:
    """Return the (code, label) of each transformation chip in the seen-before banner."""
    return re.findall(r'data-transformation="([a-z_]+)">([^<]+)</span>', banner(html))


# --- the labels ------------------------------------------------------------------------------


def test_moment_label_is_minutes_seconds_and_tenths():
    assert match_evidence.moment_label(2.0) == "00:02.0"
    assert match_evidence.moment_label(83.46) == "01:23.5"
    assert match_evidence.moment_label(3725.0) == "1:02:05.0"


# --- through the real pipeline ---------------------------------------------------------------


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 5-second shot over a photograph, its copy rotated by a display matrix, and a still of it."""
    folder = tmp_path_factory.mktemp("evidence")
    original = photo_shot(folder / "original.mp4", photo="astronaut.png")
    return {
        "original": original,
        "rotated": repost(original, folder / "rotated.mp4", "rotated"),
        "pillarbox": repost(original, folder / "pillarbox.mp4", "pillarbox_4_3"),
        "still": repost(original, folder / "still.png", "still"),
    }


@pytest.mark.worker
@pytest.mark.timeout(600)
def test_match_evidence_api_and_desk_on_real_reposts(worker, shot):
    # given: the original in one analyst's case; a rotated copy, a pillarboxed copy and a
    # screenshot of it in cases of their own
    owner = make_user("ana", "analyst", is_staff=True)
    api = token_client(owner)
    original = analysed(api, shot["original"], title="Footage of the square, March 2022")
    rotated = analysed(api, shot["rotated"], title="Rotated repost")
    pillarbox = analysed(api, shot["pillarbox"], title="Pillarboxed repost")
    still = analysed(api, shot["still"], title="Screenshot posted as a photo")

    # when
    found = {name: matches_of(api, item["id"]) for name, item in
             {"rotated": rotated, "pillarbox": pillarbox, "still": still}.items()}  # fmt: skip

    # then: each copy lists the original with how it differs, in codes and in words; the
    # screenshot lists a video it was taken from (the original or a copy with the same frames)
    by_name = {}
    for name in ("rotated", "pillarbox"):
        assert original["id"] in [m["media_item"] for m in found[name]], (name, found[name])
        by_name[name] = next(m for m in found[name] if m["media_item"] == original["id"])
    by_name["still"] = next(m for m in found["still"] if "still_from_video" in codes(m))
    video_id = by_name["still"]["media_item"]
    assert "rotated" in codes(by_name["rotated"])
    assert {"code": "rotated", "label": "Rotated", "moment_s": None} in by_name["rotated"]["transformations"]
    assert "bars_removed" in codes(by_name["pillarbox"])
    # the screenshot names the moment of the video it was taken from
    moment = next(t for t in by_name["still"]["transformations"] if t["code"] == "still_from_video")
    assert abs(moment["moment_s"] - STILL_AT_S) <= 0.5
    assert moment["label"] == f"Still from the video at {match_evidence.moment_label(moment['moment_s'])}"
    for match in by_name.values():
        assert 0.5 < match["similarity"] <= 1.0 and match["frame_pairs"]
        for pair in match["frame_pairs"]:
            assert set(pair) == {"time_s", "other_time_s", "image_url", "image_time_s", "other_image_url",
                                 "other_image_time_s"}  # fmt: skip
            sides = (("image_url", "image_time_s", "time_s"), ("other_image_url", "other_image_time_s", "other_time_s"))
            for url, shown_s, time_s in ([pair[key] for key in side] for side in sides):
                # a picture is a stored keyframe at the pair's moment or within the tolerance, and says which
                assert (url is None) == (shown_s is None)
                if url is not None:
                    assert abs(shown_s - time_s) <= match_evidence.NEAREST_KEYFRAME_S
    # the rotated copy has the same frames at the same times: its first pair shows both keyframes
    first = by_name["rotated"]["frame_pairs"][0]
    assert first["image_url"] and first["other_image_url"]
    for url in (first["image_url"], first["other_image_url"]):
        image = api.get(url)
        assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    # the screenshot's own picture is its keyframe at 0
    assert by_name["still"]["frame_pairs"][0]["image_time_s"] == 0.0
    # seen from the video, the moment is the same
    back = next(m for m in matches_of(api, video_id) if m["media_item"] == still["id"])
    assert [t["moment_s"] for t in back["transformations"] if t["code"] == "still_from_video"] == [moment["moment_s"]]

    # and on the desk: the chips, the similarity and the strip of pairs on the copy's case page
    reviewer = make_user("rev", "reviewer", is_staff=True)
    rotated_case = Case.objects.get(pk=rotated["case"])
    html = page(logged_in(reviewer).get(change_url(rotated_case)))
    assert ("rotated", "Rotated") in chips(html)
    assert f"{round(by_name['rotated']['similarity'] * 100)} %" in banner(html)
    strip = side_by_side(html)
    assert strip and strip[0] == [
        first["image_url"].split("testserver")[-1],
        first["other_image_url"].split("testserver")[-1],
    ]
    still_html = page(logged_in(reviewer).get(change_url(Case.objects.get(pk=still["case"]))))
    assert ("still_from_video", moment["label"]) in chips(still_html)
    assert moment["label"] in banner(still_html)

    # a second analyst, who may not see the original's case, is told nothing of it
    stranger = make_user("ana2", "analyst", is_staff=True)
    own = analysed(token_client(stranger), shot["rotated"], title="Same rotated file, other analyst")
    assert matches_of(token_client(stranger), own["id"]) == []
    stranger_html = page(logged_in(stranger).get(change_url(Case.objects.get(pk=own["case"]))))
    assert banner(stranger_html) == "" and "Footage of the square" not in stranger_html
    for keyframe in Keyframe.objects.filter(media_item_id=original["id"]):
        assert reverse("keyframe-image", args=[keyframe.pk]) not in stranger_html


# --- rendering from stored rows --------------------------------------------------------------


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "analyst": make_user("ana", "analyst", is_staff=True),
        "reviewer": make_user("rev", "reviewer", is_staff=True),
    }


def test_match_evidence_dense_pairs_show_the_nearest_keyframe_and_say_which_moment(people):
    # given: a dense match of a continuous shot, half a second apart, keyframes only every 2.5 s
    analyst = people["analyst"]
    old = media_rows(open_case(analyst, title="Archived"), analyst, sha="a", times=(0.0, 2.5, 5.0), days_ago=30)
    case = open_case(analyst, title="Repost")
    new = media_rows(case, analyst, sha="b", times=(0.0, 2.3, 5.2))
    pairs = [[t / 2, t / 2] for t in range(11)]  # 0.0, 0.5, ... 5.0 in both
    match_rows(new, old, pairs, transformations=["bars_removed"], similarity=0.87)

    # when
    html = page(logged_in(people["reviewer"]).get(change_url(case)))
    answer = token_client(people["reviewer"]).get(f"/api/v1/media/{new.pk}/matches/").json()

    # then: the strip shows each keyframe pair once, with the moments matched and the one shown
    shown = banner(html)
    assert side_by_side(html) == [
        [keyframe_url(new, 0.0), keyframe_url(old, 0.0)],
        [keyframe_url(new, 2.3), keyframe_url(old, 2.5)],
        [keyframe_url(new, 5.2), keyframe_url(old, 5.0)],
    ]
    # the pair matched at 2.0 s shows the keyframes at 2.3 s and 2.5 s, and says so
    assert "(keyframe at 0:02.300)" in shown and "(keyframe at 0:02.500)" in shown
    assert "(keyframe at 0:05.200)" in shown
    assert ("bars_removed", "Black bars added or removed") in chips(html) and "87 %" in shown
    # the API lists every pair, with a picture where a keyframe is near and null where none is
    api_pairs = answer[0]["frame_pairs"]
    assert len(api_pairs) == 11
    at_2_5 = next(p for p in api_pairs if p["time_s"] == 2.5)
    assert at_2_5["image_time_s"] == 2.3 and at_2_5["other_image_time_s"] == 2.5
    at_1_0 = next(p for p in api_pairs if p["time_s"] == 1.0)
    assert at_1_0["image_url"] is None and at_1_0["other_image_url"] is None


def test_match_evidence_the_soundtrack_alone_is_named_without_pictures(people):
    analyst = people["analyst"]
    old = media_rows(open_case(analyst, title="Archived with the song"), analyst, sha="a", times=(0.0,), days_ago=3)
    case = open_case(analyst, title="Other pictures, same song")
    new = media_rows(case, analyst, sha="b", times=(0.0,))
    for item, other, offset in ((new, old, 1.5), (old, new, -1.5)):
        MediaMatch.objects.create(media_item=item, other=other, similarity=0.9, matched_frame_count=0, frame_pairs=[],
                                  time_offset_s=offset, transformations=["same_audio"], audio_similarity=0.9,
                                  audio_time_offset_s=offset)  # fmt: skip

    html = page(logged_in(people["reviewer"]).get(change_url(case)))
    answer = token_client(people["reviewer"]).get(f"/api/v1/media/{new.pk}/matches/").json()

    shown = banner(html)
    assert ("same_audio", "Same soundtrack") in chips(html)
    assert "pictures not matched" in shown and "soundtrack <strong>90 %</strong>" in shown
    assert "The pictures differ: the same soundtrack was heard in both" in shown and side_by_side(html) == []
    assert answer[0]["transformations"] == [{"code": "same_audio", "label": "Same soundtrack", "moment_s": None}]
    assert answer[0]["audio_similarity"] == 0.9 and answer[0]["audio_time_offset_s"] == 1.5


def test_match_evidence_an_analyst_sees_no_frame_of_a_case_they_may_not_see(people):
    analyst, other = people["analyst"], make_user("ana2", "analyst", is_staff=True)
    hidden = media_rows(open_case(other, title="Someone else's case"), other, sha="a", times=(0.0, 2.0), days_ago=3)
    case = open_case(analyst, title="Mine")
    mine = media_rows(case, analyst, sha="b", times=(0.0, 2.0))
    match_rows(mine, hidden, [[0.0, 0.0], [2.0, 2.0]], transformations=["rotated"])

    html = page(logged_in(analyst).get(change_url(case)))
    answer = token_client(analyst).get(f"/api/v1/media/{mine.pk}/matches/")

    assert answer.status_code == 200 and answer.json() == []
    assert banner(html) == "" and "Someone else" not in html
    for keyframe in hidden.keyframes.all():
        assert reverse("keyframe-image", args=[keyframe.pk]) not in html
        # nor can the analyst open a frame of it by guessing its URL
        assert token_client(analyst).get(reverse("keyframe-image", args=[keyframe.pk])).status_code == 404
    # the reviewer, who may see both, gets the pair with both pictures
    pair = token_client(people["reviewer"]).get(f"/api/v1/media/{mine.pk}/matches/").json()[0]["frame_pairs"][0]
    assert pair["image_url"].endswith(reverse("keyframe-image", args=[mine.keyframes.get(timestamp_s=0.0).pk]))
    assert pair["other_image_url"].endswith(reverse("keyframe-image", args=[hidden.keyframes.get(timestamp_s=0.0).pk]))
    assert MediaItem.objects.count() == 2


def test_match_evidence_in_the_case_report(people):
    reviewer = people["reviewer"]
    old = media_rows(open_case(reviewer, title="Archived"), reviewer, sha="a", times=(0.0, 2.0), days_ago=3)
    case = open_case(reviewer, title="Rotated and dubbed")
    new = media_rows(case, reviewer, sha="b", times=(0.0, 2.0))
    match_rows(new, old, [[0.0, 0.0], [2.0, 2.0]], transformations=["rotated", "same_audio"], audio_similarity=0.84)

    html = report_html(case=case, user=reviewer, show_graphic=False)

    row = re.search(r"<h3>Seen before</h3>.*?</table>", html, re.S)
    assert row and "91% alike, 2 frames; rotated; same soundtrack (soundtrack 84% alike)" in row.group(0)


# --- in the browser --------------------------------------------------------------------------


def keyframe_pictures(*items: MediaItem) -> None:
    """Store a real picture for each keyframe of the items: a window of a photograph moving with time."""
    photo = photograph("astronaut.png").convert("RGB")
    for keyframe in Keyframe.objects.filter(media_item__in=items):
        left = round(keyframe.timestamp_s * 30)
        buffer = io.BytesIO()
        photo.crop((left, 100, left + 320, 280)).save(buffer, "JPEG", quality=85)
        name = default_storage.save(f"keyframes/evidence-{keyframe.pk}.jpg", ContentFile(buffer.getvalue()))
        Keyframe.objects.filter(pk=keyframe.pk).update(image=name, width=320, height=180)


@pytest.mark.timeout(300)
@pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)), reason="needs chromium and chromium-driver"
)
def test_match_evidence_strip_and_labels_in_the_browser(transactional_db, live_server, browser):  # noqa: F811
    # given: a dense match with bars, rotation and the same soundtrack, keyframes with real pictures
    analyst = make_user("ana", "analyst", is_staff=True)
    reviewer = make_user("rev", "reviewer", is_staff=True)
    old = media_rows(open_case(analyst, title="Archived"), analyst, sha="a", times=(0.0, 2.5, 5.0), days_ago=30)
    case = open_case(analyst, title="Rotated repost with bars")
    new = media_rows(case, analyst, sha="b", times=(0.0, 2.3, 5.2))
    keyframe_pictures(old, new)
    match_rows(new, old, [[t / 2, t / 2] for t in range(11)], similarity=0.87, audio_similarity=0.88,
               transformations=["bars_removed", "rotated", "same_audio"])  # fmt: skip

    # when
    log_in(browser, live_server.url, reviewer, change_url(case))

    # then: the chips read in words, next to the similarity of pictures and sound
    shown = browser.find_element(By.ID, "seen-before")
    chips = shown.find_elements(By.CSS_SELECTOR, "[data-transformation]")
    assert [chip.get_attribute("textContent") for chip in chips] == [
        "Black bars added or removed",
        "Rotated",
        "Same soundtrack",
    ]
    assert all(chip.is_displayed() and chip.size["height"] > 0 for chip in chips)
    assert "87 %" in shown.text and "soundtrack 88 %" in shown.text
    # the first pair side by side, both pictures loaded; the others one click away, each saying
    # which keyframe stands in for the moment matched
    left, right = shown.find_element(By.CSS_SELECTOR, ".seen-pair").find_elements(By.CSS_SELECTOR, ".kf-blur img")
    assert left.location["y"] == right.location["y"] and left.location["x"] < right.location["x"]
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) == 320 for img in (left, right))
    shown.find_element(By.CSS_SELECTOR, ".seen-more summary").click()
    WebDriverWait(browser, WAIT_S).until(lambda _: "(keyframe at 0:02.300)" in shown.text)
    assert "(keyframe at 0:02.500)" in shown.text and "(keyframe at 0:05.200)" in shown.text
    assert len(shown.find_elements(By.CSS_SELECTOR, ".seen-pair")) == 3
    save_full_page(browser, ARTIFACTS / "admin-match-evidence.png")
