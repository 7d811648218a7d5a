"""Recycled footage: copies of archived clips are found, look-alikes are not, and only visibly.

The end-to-end tests submit generated footage through the API to a real Celery worker with real
ffmpeg. They read ``GET /api/v1/media/{id}/matches/`` and the ``seen_before`` summaries.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np
import pytest
from PIL import Image

from tests.conftest import analysed, make_user, matches_of, submit, token_client, wait_for_analysis
from tests.photos import photograph
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
from verify.similarity import dense, dense_matching, matching
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
    with ThreadPoolExecutor(max_workers=3) as encoders:  # each ffmpeg waits on its decoder at times
        made = {
            name: (encoders.submit(variant, original, footage_dir / f"sim-{name}.mp4", name), shift)
            for name, shift in TRANSFORMS.items()
        }
        embedding = encoders.submit(clip_embedding, original, footage_dir / "sim-embedding.mp4")
        made["embedding"] = (embedding, EMBEDDING_SHIFT_S)
        return {name: (made_path.result(), shift) for name, (made_path, shift) in made.items()}


def cards_clip(path: Path, cards: tuple[str, ...]) -> Path:
    """Write a clip of broadcast test cards, one 2.5-second shot each."""
    return _encode(_shots(cards), path)


@pytest.fixture
def reviewer(db: None) -> Any:
    return make_user("reviewer", "reviewer")


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
    with ThreadPoolExecutor(max_workers=3) as encoders:
        made = [
            encoders.submit(clip_other_time, footage_dir / "sim-other-time.mp4"),
            encoders.submit(clip_night, footage_dir / "sim-night-a.mp4", NIGHT_A_SHOTS),
            encoders.submit(clip_night, footage_dir / "sim-night-b.mp4", NIGHT_B_SHOTS),
            encoders.submit(cards_clip, footage_dir / "sim-cards-a.mp4", ("smptebars", "pal75bars", "testsrc")),
            encoders.submit(cards_clip, footage_dir / "sim-cards-b.mp4", ("smptehdbars", "pal100bars", "testsrc2")),
        ]
        clips = [original, *(clip.result() for clip in made)]
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


# --- dense frames: overlays, crops and short excerpts ---------------------------------------


def _pan(photo: str, *, frames: int = 12, start_x: int = 0, overlay: str = "", crop_share: float = 1.0) -> np.ndarray:
    """Return (n, 90, 160, 3) pictures of a slow pan over a real photograph, as the dense pass decodes them.

    ``overlay`` draws what ``tests.footage`` draws on a repost: a large channel logo (about 15 %
    of the frame) or a caption band; ``crop_share`` keeps the centre of each frame, scaled back.
    """
    image = photograph(photo).resize((640, 640), Image.Resampling.BICUBIC)
    pictures = []
    for n in range(frames):
        left, top = start_x + 4 * n, 200 + n
        window = image.crop((left, top, left + 320, top + 180))
        if crop_share < 1:
            margin_x, margin_y = round(320 * (1 - crop_share) / 2), round(180 * (1 - crop_share) / 2)
            window = window.crop((margin_x, margin_y, 320 - margin_x, 180 - margin_y))
        frame = np.asarray(window.resize((160, 90), Image.Resampling.BOX), dtype=np.float32)
        for (x0, y0, x1, y1), colour, alpha in _OVERLAYS.get(overlay, ()):
            box = frame[round(90 * y0) : round(90 * y1), round(160 * x0) : round(160 * x1)]
            box[:] = (1 - alpha) * box + alpha * np.array(colour, dtype=np.float32)
        pictures.append(frame.round().astype(np.uint8))
    return np.stack(pictures)


# Boxes (left, top, right, bottom as shares of the frame), colour and opacity, as tests.footage.
_OVERLAYS = {
    "logo": [((0.58, 0.03, 0.97, 0.42), (255, 255, 255), 0.85), ((0.65, 0.1, 0.9, 0.35), (16, 64, 160), 0.9)],
    "caption": [((0.0, 0.8, 1.0, 1.0), (0, 0, 0), 0.75), ((0.05, 0.86, 0.65, 0.91), (255, 255, 255), 0.9)],
}


def _dense_item(title: str, pictures: np.ndarray) -> tuple[MediaItem, list[matching.Match]]:
    """Store an item's dense frames (2 per second) through the matcher; return it with what it matched."""
    item = _fingerprinted_item(title, [])
    frames = dense.pictures_hash(pictures, times_s=np.arange(len(pictures)) / 2, rate_hz=2.0)
    return item, matching.media_matches_update(media_item=item, frames=[], dense=frames)


@pytest.fixture
def fresh_dense_indexes(monkeypatch):
    monkeypatch.setattr(dense_matching, "_dense_indexes", {})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("photo", "overlay", "crop_share", "transformation"),
    [("chelsea.png", "caption", 1.0, "logo"), ("motorcycle_left.png", "logo", 1.0, "logo"),
     ("astronaut.png", "", 0.9, "cropped")],
)  # fmt: skip
def test_dense_matching_copy_with_caption_logo_or_crop_matches_on_a_part(
    fresh_dense_indexes, photo, overlay, crop_share, transformation
):
    # given: a pan over a photograph in the archive, and another photograph panned alike
    original, _ = _dense_item("original", _pan(photo))
    _dense_item("other", _pan("coffee.png"))
    copy_pictures = _pan(photo, overlay=overlay, crop_share=crop_share)
    whole = dense.pictures_hash(copy_pictures, times_s=np.arange(len(copy_pictures)) / 2, rate_hz=2.0)
    # the whole frames alone do not find it
    assert dense_matching.dense_matches_find(media_item=original, dense=whole, is_still=False) == []
    # when: the copy comes in
    copy, found = _dense_item("copy", copy_pictures)
    # then: it matches the original only, at the same moments, and says how it differs
    assert [(m.other_id, m.transformations) for m in found] == [(original.pk, (transformation,))]
    assert found[0].frame_pairs and all(a == b for a, b in found[0].frame_pairs)
    assert MediaMatch.objects.get(media_item=original, other=copy).transformations == [transformation]


@pytest.mark.django_db
def test_dense_matching_original_after_its_cropped_copy_is_found_too(fresh_dense_indexes):
    # given: the cropped copy came first
    copy, _ = _dense_item("copy", _pan("astronaut.png", crop_share=0.9))
    # when
    _, found = _dense_item("original", _pan("astronaut.png"))
    # then
    assert [(m.other_id, m.transformations) for m in found] == [(copy.pk, ("cropped",))]


@pytest.mark.django_db
def test_dense_matching_centre_crops_match_no_other_footage(fresh_dense_indexes):
    # given: pans over other photographs, and over another part of the same one
    for title, photo, start_x in [
        ("coffee", "coffee.png", 0),
        ("camera", "camera.png", 0),
        ("motorcycle", "motorcycle_left.png", 0),
        ("elsewhere", "chelsea.png", 300),
    ]:
        _dense_item(title, _pan(photo, start_x=start_x))
    # when: copies of a pan over chelsea come in, with a logo, a caption and cropped
    found = [
        _dense_item(f"copy {n}", _pan("chelsea.png", overlay=overlay, crop_share=share))[1]
        for n, (overlay, share) in enumerate([("logo", 1.0), ("caption", 1.0), ("", 0.9)])
    ]
    # then: none of them matches the other footage, only the copies before it
    copies = set(MediaItem.objects.filter(case__title__startswith="copy").values_list("pk", flat=True))
    assert all({m.other_id for m in matches} <= copies for matches in found), found


def test_dense_matching_slow_pan_lines_up_at_the_closest_offset():
    # given: a 3-second excerpt of a slow pan: every frame is also within the wide radius of its
    # neighbours a second away, so several offsets get a vote from every frame
    pan = dense.pictures_hash(_pan("astronaut.png", frames=14), times_s=np.arange(14) / 2, rate_hz=2.0)
    excerpt = dense.pictures_hash(_pan("astronaut.png", frames=14)[3:9], times_s=np.arange(6) / 2, rate_hz=2.0)
    distances = np.unpackbits(excerpt.frames["pdq"][:, None] ^ pan.frames["pdq"][None], axis=2).sum(axis=2)
    hits = [(int(q), int(o), int(distances[q, o])) for q, o in zip(*np.nonzero(distances <= 64), strict=True)]
    # when
    found = dense_matching._video_match(excerpt, pan.frames, hits, np.arange(6))
    # then: the excerpt starts 1.5 s into the pan
    assert found is not None
    offset, matched = found
    assert offset == pytest.approx(-1.5)
    assert sorted(matched) == list(range(6)) and all(o == q + 3 for q, (o, _) in matched.items())
