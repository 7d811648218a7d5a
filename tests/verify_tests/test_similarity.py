"""Recycled footage: copies of archived clips are found, look-alikes are not, and only visibly.

The end-to-end tests submit generated footage through the API to a real Celery worker with real
ffmpeg. They read ``GET /api/v1/media/{id}/matches/`` and the ``seen_before`` summaries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ffmpeg
import pytest

from tests.conftest import make_user, submit, token_client, wait_for_analysis
from tests.verify_tests.test_similarity_evaluation import (
    EMBEDDING_SHIFT_S,
    NIGHT_A_SHOTS,
    NIGHT_B_SHOTS,
    ORIGINAL_CUTS_S,
    TRANSFORMS,
    _encode,
    _shots,
    clip_embedding,
    clip_night,
    clip_original,
    clip_other_time,
    variant,
)
from verify.models import Keyframe, KeyframeFingerprint, MediaItem, MediaMatch
from verify.similarity import matching
from verify.similarity.hashes import HashIndex, hashes_array
from verify.similarity.matching import ArchiveIndex, FrameHit, temporal_match

# One frame at 25 fps, plus slack for a cut frame landing one frame later in a copy.
TIME_SLACK_S = 0.1


@pytest.fixture(scope="session")
def original(footage_dir: Path) -> Path:
    return clip_original(footage_dir / "sim-original.mp4")


@pytest.fixture(scope="session")
def copies(original: Path, footage_dir: Path) -> dict[str, tuple[Path, float]]:
    """Every copy of the original, with the time in the original of the copy's t=0."""
    made = {
        name: (variant(original, footage_dir / f"sim-{name}.mp4", name), shift) for name, shift in TRANSFORMS.items()
    }
    made["embedding"] = (clip_embedding(original, footage_dir / "sim-embedding.mp4"), EMBEDDING_SHIFT_S)
    return made


def cards_clip(path: Path, cards: tuple[str, ...]) -> Path:
    """Write a clip of broadcast test cards, one 2.5-second shot each."""
    return _encode(_shots(cards), path)


@pytest.fixture
def reviewer(db: None) -> Any:
    return make_user("reviewer", "reviewer")


def analysed(api: Any, path: Path, **fields: Any) -> dict[str, Any]:
    response = submit(api, path, **fields)
    assert response.status_code == 202, response.content
    detail = wait_for_analysis(api, response.json()["id"]).detail
    assert detail["state"] == "succeeded", detail["error"]
    return detail


def matches_of(client: Any, item_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/media/{item_id}/matches/")
    assert response.status_code == 200, response.content
    return response.json()


def assert_pairs_at_shift(match: dict[str, Any], shift_s: float) -> None:
    """Every matched pair shows the same moment: original time = copy time + shift."""
    for pair in match["frame_pairs"]:
        assert pair["other_time_s"] == pytest.approx(pair["time_s"] + shift_s, abs=TIME_SLACK_S), match


# --- end to end: copies, look-alikes, permissions ---------------------------------------------


@pytest.mark.worker
def test_similarity_every_copy_matches_the_original_at_the_right_times(api, worker, reviewer, original, copies):
    # given: the original in the archive
    archived = analysed(api, original, title="Archived clip")
    reviewer_api = token_client(reviewer)
    # when: each copy comes in
    details = {name: analysed(api, path, title=f"Copy {name}") for name, (path, _) in copies.items()}
    # then
    problems = {}
    for name, detail in details.items():
        shift_s = copies[name][1]
        found = [m for m in matches_of(reviewer_api, detail["id"]) if m["media_item"] == archived["id"]]
        if len(found) != 1:
            problems[name] = f"no match: {matches_of(reviewer_api, detail['id'])}"
            continue
        match = found[0]
        assert match["matched_frame_count"] >= 3, (name, match)
        assert match["matched_frame_count"] == len(match["frame_pairs"])
        assert match["mirrored"] is (name == "mirrored"), (name, match)
        assert match["exact"] is False
        assert 0 < match["similarity"] <= 1
        assert match["time_offset_s"] == pytest.approx(-shift_s, abs=TIME_SLACK_S), (name, match)
        assert_pairs_at_shift(match, shift_s)
        # the cuts inside the copy are among the matched moments
        copy_end_s = detail["metadata"]["duration_s"] + shift_s
        cuts_inside = [c for c in ORIGINAL_CUTS_S if shift_s + 0.2 < c < copy_end_s - 0.2]
        matched_original_times = [p["other_time_s"] for p in match["frame_pairs"]]
        missing = [c for c in cuts_inside if not any(abs(t - c) <= TIME_SLACK_S for t in matched_original_times)]
        if len(missing) > len(cuts_inside) - 3:
            problems[name] = f"cuts not matched {missing}: {match['frame_pairs']}"
        # and the archived item learns of the copy too
        back = [m for m in matches_of(reviewer_api, archived["id"]) if m["media_item"] == detail["id"]]
        assert len(back) == 1 and back[0]["time_offset_s"] == pytest.approx(shift_s, abs=TIME_SLACK_S), name
    assert not problems, problems


@pytest.mark.worker
def test_similarity_lookalikes_do_not_match(api, worker, original, footage_dir: Path):
    # given: the original and footage that only looks like it or like each other
    clips = [
        original,
        clip_other_time(footage_dir / "sim-other-time.mp4"),
        clip_night(footage_dir / "sim-night-a.mp4", NIGHT_A_SHOTS),
        clip_night(footage_dir / "sim-night-b.mp4", NIGHT_B_SHOTS),
        cards_clip(footage_dir / "sim-cards-a.mp4", ("smptebars", "pal75bars", "testsrc")),
        cards_clip(footage_dir / "sim-cards-b.mp4", ("smptehdbars", "pal100bars", "testsrc2")),
    ]
    # when
    details = [analysed(api, path) for path in clips]
    # then: every clip yields keyframes that are looked up, and nothing matches
    for detail in details:
        assert KeyframeFingerprint.objects.filter(media_item_id=detail["id"]).exists()
        assert matches_of(api, detail["id"]) == []
    assert not MediaMatch.objects.exists()


@pytest.mark.worker
def test_similarity_reposted_excerpt_shows_the_reviewer_the_earlier_case(api, worker, reviewer, original, copies):
    # given: an archived clip in a case
    archived = analysed(api, original, title="Shelling of the market, March 2022", claim="Filmed on 3 March 2022")
    # when: a re-encoded, logo-stamped 360p excerpt of it is submitted as new footage
    reposted_path, shift_s = copies["reposted"]
    reviewer_api = token_client(reviewer)
    response = submit(reviewer_api, reposted_path, title="Strike yesterday", claim="Posted as filmed yesterday")
    assert response.status_code == 202, response.content
    detail = wait_for_analysis(reviewer_api, response.json()["id"]).detail
    # then: as soon as the analysis has succeeded, the reviewer sees the earlier case
    assert detail["state"] == "succeeded", detail["error"]
    assert detail["metadata"]["display_height"] == 360
    [match] = matches_of(reviewer_api, detail["id"])
    assert match["media_item"] == archived["id"]
    assert match["case"] == {"id": archived["case"], "title": "Shelling of the market, March 2022", "verdict": ""}
    assert match["matched_frame_count"] >= 3
    assert_pairs_at_shift(match, shift_s)
    seen = detail["seen_before"]
    assert seen["seen"] is True and seen["count"] == 1
    assert seen["earliest"]["case"]["id"] == archived["case"]
    assert seen["earliest"]["media_item"] == archived["id"]
    assert seen["earliest"]["exact"] is False
    case = reviewer_api.get(f"/api/v1/cases/{detail['case']}/").json()
    assert case["seen_before"]["earliest"]["case"]["title"] == "Shelling of the market, March 2022"


@pytest.mark.worker
def test_similarity_original_added_after_the_copy_is_matched_both_ways(api, worker, original, copies):
    # given: a copy archived first
    copy = analysed(api, copies["trimmed"][0], title="The copy came first")
    assert matches_of(api, copy["id"]) == []
    # when: the original arrives later
    later = analysed(api, original, title="The original came later")
    # then: each lists the other, with the pairs read from its own side
    [forward] = matches_of(api, later["id"])
    [backward] = matches_of(api, copy["id"])
    assert forward["media_item"] == copy["id"] and backward["media_item"] == later["id"]
    assert forward["matched_frame_count"] == backward["matched_frame_count"] >= 3
    assert_pairs_at_shift(backward, copies["trimmed"][1])
    assert [[p["time_s"], p["other_time_s"]] for p in forward["frame_pairs"]] == sorted(
        [[p["other_time_s"], p["time_s"]] for p in backward["frame_pairs"]]
    )
    assert later["seen_before"]["seen"] is True
    assert api.get(f"/api/v1/media/{copy['id']}/").json()["seen_before"]["earliest"]["media_item"] == later["id"]


@pytest.mark.worker
def test_similarity_user_never_learns_of_a_case_they_may_not_see(worker, reviewer, original, copies):
    # given: two analysts, each with their own case; the second submits a copy of the first's clip
    first_api = token_client(make_user("first", "analyst"))
    second_api = token_client(make_user("second", "analyst"))
    archived = analysed(first_api, original, title="Confidential source")
    copy = analysed(second_api, copies["360p"][0], title="Seen on Telegram")
    # then: the match exists, and a reviewer (who sees every case) is told of it
    assert [m["media_item"] for m in matches_of(token_client(reviewer), copy["id"])] == [archived["id"]]
    # but neither analyst learns of the other's case, through any door
    assert matches_of(second_api, copy["id"]) == []
    assert matches_of(first_api, archived["id"]) == []
    assert copy["seen_before"] == {"seen": False, "count": 0, "earliest": None, "items": []}
    case = second_api.get(f"/api/v1/cases/{copy['case']}/").json()
    assert case["seen_before"]["count"] == 0
    assert second_api.get(f"/api/v1/media/{archived['id']}/matches/").status_code == 404
    assert "Confidential source" not in str(second_api.get(f"/api/v1/media/{copy['id']}/").json())


@pytest.mark.worker
def test_similarity_exact_duplicate_is_seen_before(api, worker, reviewer, footage_dir: Path):
    # given: a single-shot clip (too few pictures for a near-duplicate match) archived in a case
    clip = footage_dir / "sim-single-shot.mp4"
    ffmpeg.input("mandelbrot=s=320x180:r=25", f="lavfi", t=3).output(
        str(clip), vcodec="libx264", pix_fmt="yuv420p", preset="veryfast"
    ).overwrite_output().run(quiet=True)
    reviewer_api = token_client(reviewer)
    first = analysed(reviewer_api, clip, title="First posting")
    # when: the same bytes come in under another claim
    second = analysed(reviewer_api, clip, title="Second posting")
    # then
    assert second["duplicate_of"] == first["id"]
    [entry] = second["seen_before"]["items"]
    assert entry["media_item"] == first["id"] and entry["exact"] is True and entry["similarity"] == 1.0
    [match] = matches_of(reviewer_api, second["id"])
    assert match["exact"] is True and match["media_item"] == first["id"]
    first_detail = reviewer_api.get(f"/api/v1/media/{first['id']}/").json()
    assert first_detail["seen_before"]["items"][0]["media_item"] == second["id"]


# --- the temporal rule ----------------------------------------------------------------------

_A = "00" * 32
_B = "ff" * 32
_C = "0f" * 32


def test_temporal_match_keeps_hits_at_one_offset():
    hits = [
        FrameHit(time_s=1.0, other_time_s=3.0, distance=10, pdq=_A),
        FrameHit(time_s=4.0, other_time_s=6.04, distance=12, pdq=_B),
        FrameHit(time_s=7.0, other_time_s=9.0, distance=20, pdq=_C),
        FrameHit(time_s=8.0, other_time_s=2.0, distance=5, pdq=_C),  # a look-alike elsewhere
    ]

    offset, kept = temporal_match(hits, tolerance_s=0.25, max_distance=64)

    assert offset == pytest.approx(-2.0)
    assert [(h.time_s, h.other_time_s) for h in kept] == [(1.0, 3.0), (4.0, 6.04), (7.0, 9.0)]


def test_temporal_match_counts_a_repeated_picture_once():
    # given: a static shot (or a channel card) matched at three moments at one offset
    hits = [FrameHit(time_s=t, other_time_s=t + 5, distance=3, pdq=_A) for t in (0.0, 10.0, 20.0)]

    _, kept = temporal_match(hits, tolerance_s=0.25, max_distance=64)

    assert len(kept) == 1


def test_temporal_match_uses_each_frame_once():
    hits = [
        FrameHit(time_s=1.0, other_time_s=1.0, distance=4, pdq=_A),
        FrameHit(time_s=1.0, other_time_s=1.1, distance=9, pdq=_A),
        FrameHit(time_s=1.1, other_time_s=1.0, distance=9, pdq=_B),
    ]

    _, kept = temporal_match(hits, tolerance_s=0.25, max_distance=64)

    assert [(h.time_s, h.other_time_s) for h in kept] == [(1.0, 1.0)]


# --- the index ------------------------------------------------------------------------------


def test_hash_index_finds_exactly_the_hashes_within_the_radius():
    index = HashIndex()
    index.add([7, 8, 9], hashes_array(["00" * 32, "0f" + "00" * 31, "ff" * 32]))

    [hits] = index.search(hashes_array(["00" * 32]), max_distance=4)

    assert sorted(hits) == [(7, 0), (8, 4)]


def _fingerprinted_item(case_title: str, pdqs: list[str], *, quality: int = 100) -> MediaItem:
    from workflows.models import Case

    user = make_user(f"u-{case_title}")
    case = Case.objects.create(title=case_title, claim="c", created_by=user)
    item = MediaItem.objects.create(case=case, original="x", size_bytes=1, sha256=case_title * 4, uploaded_by=user)
    for second, pdq in enumerate(pdqs):
        keyframe = Keyframe.objects.create(
            media_item=item, timestamp_s=second, image="k.jpg", width=1, height=1, phash="0" * 16, source_sha256="0"
        )
        KeyframeFingerprint.objects.create(
            keyframe=keyframe, media_item=item, timestamp_s=second, pdq=pdq, pdq_quality=quality
        )
    return item


@pytest.mark.django_db
def test_archive_index_catches_up_with_rows_added_and_ignores_deleted_ones():
    # given: a process index loaded from the database
    first = _fingerprinted_item("first", ["00" * 32])
    index = ArchiveIndex()
    assert index.refresh() == 1
    # when: another process stores more fingerprints, one of them too flat to use
    _fingerprinted_item("second", ["ff" * 32])
    _fingerprinted_item("flat", ["0f" * 32], quality=10)
    # then: the next refresh adds only the new usable row, once
    assert index.refresh() == 1
    assert index.refresh() == 0
    assert len(index) == 2
    # and a deleted item's hashes are no longer hits once read back from the database
    first_id = first.fingerprints.get().pk
    [hits] = index.search(hashes_array(["00" * 32]), max_distance=8)
    assert [hit_id for hit_id, _ in hits] == [first_id]
    first.delete()
    assert not KeyframeFingerprint.objects.filter(pk=first_id).exists()


@pytest.mark.django_db
def test_matches_find_needs_several_pictures_at_one_offset(monkeypatch):
    # given: an archived item with three different pictures, one second apart
    pictures = ["00" * 32, "ff" * 32, "0f" * 32, "f0" * 32]
    archived = _fingerprinted_item("archived", pictures[:3])
    monkeypatch.setattr(matching, "_archive_index", None)
    # when: an item shows two of them (too few) / all three two seconds later
    few = _fingerprinted_item("few", [pictures[0], pictures[3], pictures[1]])
    many = _fingerprinted_item("many", [pictures[3], pictures[3], *pictures[:3]])
    found_few = matching.matches_find(media_item=few, fingerprints=list(few.fingerprints.all()), mirrored={})
    found_many = matching.matches_find(media_item=many, fingerprints=list(many.fingerprints.all()), mirrored={})
    # then
    assert [m.other_id for m in found_few] == []
    assert [(m.other_id, m.time_offset_s, m.frame_pairs) for m in found_many if m.other_id == archived.pk] == [
        (archived.pk, 2.0, [(2.0, 0.0), (3.0, 1.0), (4.0, 2.0)])
    ]
