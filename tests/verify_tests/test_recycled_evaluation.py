"""The recycled-footage evaluation: real photographs filmed as continuous shots, their reposts, and look-alikes.

Each original is one continuous phone-like shot panned over a photograph shipped in
scikit-image (``tests.footage``). Every original goes into the archive with its reposts
(``tests.footage.REPOSTS``) and with footage that must not match it: the same photograph panned
elsewhere (other footage of one place), the same scene shot twice (scikit-image's stereo pair
of a motorcycle) and other photographs. Everything is analysed by the real pipeline, and the
table counts, per transformation, the copies that matched their original and every match that
should not exist.

Print the table in docs/recycled-footage.md (about 10 minutes on two busy cores; the corpus is
kept in the temporary directory and reused by the next run)::

    python -m tests.verify_tests.test_recycled_evaluation

The smoke test (`-m slow`) runs in CI on one original and a few of its copies; the full run is
marked `evaluation`, which the test command leaves out unless asked (`-m evaluation`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.footage import REPOSTS, Pan, photo_shot, repost

# Original photograph -> the camera moves filmed over it. The second pan looks at another part
# of the same photograph: other footage of the same place, which must not match.
ORIGINALS = ("astronaut.png", "coffee.png")
ORIGINAL_PAN = Pan(zoom=(1.3, 1.6), x=(0.05, 0.45), y=(0.2, 0.45))
OTHER_PAN = Pan(zoom=(2.2, 2.4), x=(0.95, 0.75), y=(0.95, 0.8))
# Negatives that are not a pan of an original: the motorcycle shot again from beside the first
# camera, and other photographs of people and things.
OTHER_FOOTAGE = {"same_scene_twice": "motorcycle_right.png", "other_photo_camera": "camera.png",
                 "other_photo_rocket": "rocket.jpg", "other_photo_chelsea": "chelsea.png"}  # fmt: skip
SMOKE_REPOSTS = ("reencoded", "rotated", "pillarbox_4_3", "still_jpeg60", "caption", "crop10", "excerpt_3s")
CORPUS_VERSION = "v1"


@dataclass(frozen=True)
class Clip:
    """One file of the corpus: its family (the original photograph or none) and its role."""

    name: str
    family: str
    role: str  # "original", a repost name, or a negative kind
    path: Path

    @property
    def negative(self) -> bool:
        return self.role not in REPOSTS and self.role != "original"


def corpus(directory: Path, *, originals: Sequence[str], reposts: Sequence[str], others: Sequence[str]) -> list[Clip]:
    """Write (or reuse) every clip of the corpus in directory and return them, originals first."""
    directory.mkdir(parents=True, exist_ok=True)
    clips: list[Clip] = []

    def made(path: Path, make: Any) -> Path:
        found = [p for p in directory.glob(f"{path.stem}.*") if ".source" not in p.name]
        return found[0] if found else make()

    for photo in originals:
        stem = Path(photo).stem
        original = made(
            directory / f"{stem}.mp4",
            lambda s=stem, p=photo: photo_shot(directory / f"{s}.mp4", photo=p, pan=ORIGINAL_PAN),
        )
        clips.append(Clip(stem, stem, "original", original))
        for name in reposts:
            target = directory / f"{stem}-{name}.mp4"
            clips.append(
                Clip(f"{stem}-{name}", stem, name, made(target, lambda t=target, n=name, o=original: repost(o, t, n)))
            )
        other = directory / f"{stem}-other_pan.mp4"
        clips.append(
            Clip(
                other.stem,
                stem,
                "other_pan",
                made(other, lambda t=other, p=photo: photo_shot(t, photo=p, pan=OTHER_PAN)),
            )
        )
    for kind in others:
        photo = OTHER_FOOTAGE[kind]
        target = directory / f"{kind}.mp4"
        clips.append(
            Clip(kind, "", kind, made(target, lambda t=target, p=photo: photo_shot(t, photo=p, pan=ORIGINAL_PAN)))
        )
    return clips  # fmt: skip


@dataclass
class Row:
    """One line of the table: a transformation and what the archive made of it."""

    found: int = 0
    expected: int = 0
    false_matches: int = 0


def archive_and_match(clips: Sequence[Clip]) -> tuple[dict[str, Row], dict[str, Any]]:
    """Analyse every clip into the archive, each in its own case; return the table and the raw matches."""
    # Imported here, so that ``python -m`` can hand this module to pytest before Django is set up.
    from django.core.files import File

    from tests.conftest import make_user
    from verify.analysis import analysis_run
    from verify.intake import media_item_create
    from verify.models import MediaItem, MediaMatch
    from workflows import services

    analyst = make_user("evaluator", "analyst")
    items: dict[str, int] = {}
    started = time.monotonic()
    for clip in clips:
        case = services.case_create(title=f"Claimed footage {clip.name}", claim="Filmed today.", created_by=analyst)
        with clip.path.open("rb") as handle:
            upload = File(handle, name=clip.path.name)
            items[clip.name] = media_item_create(case=case, upload=upload, uploaded_by=analyst).pk
        analysis_run(media_item_id=items[clip.name])
        # A Celery worker the test process started for other tests may have claimed the job first.
        deadline = time.monotonic() + 300
        item = MediaItem.objects.get(pk=items[clip.name])
        while item.state not in (MediaItem.State.SUCCEEDED, MediaItem.State.FAILED) and time.monotonic() < deadline:
            time.sleep(0.2)
            item.refresh_from_db()
        assert item.state == MediaItem.State.SUCCEEDED, (clip.name, item.error_code, item.error_message)
    elapsed_s = time.monotonic() - started
    by_id = {items[c.name]: c for c in clips}
    matched: dict[str, set[str]] = defaultdict(set)
    for a, b in MediaMatch.objects.values_list("media_item_id", "other_id"):
        matched[by_id[a].name].add(by_id[b].name)
    rows: dict[str, Row] = defaultdict(Row)
    for clip in clips:
        if clip.role == "original":
            continue
        row = rows[clip.role]
        if not clip.negative:
            row.expected += 1
            row.found += clip.family in matched[clip.name]
        allowed = set() if clip.negative else {c.name for c in clips if c.family == clip.family and not c.negative}
        row.false_matches += len(matched[clip.name] - allowed)
    return dict(rows), {"matches": dict(matched), "elapsed_s": elapsed_s, "items": len(clips)}


def table(rows: dict[str, Row]) -> str:
    """Return the per-transformation table as Markdown, copies first, with totals."""
    lines = ["| transformation | pairs found | pairs expected | false matches |", "|---|---:|---:|---:|"]
    copies = [name for name in REPOSTS if name in rows]
    negatives = sorted(name for name in rows if name not in REPOSTS)
    for name in copies + negatives:
        row = rows[name]
        expected = str(row.expected) if row.expected else "0 (negative)"
        lines.append(f"| {name} | {row.found} | {expected} | {row.false_matches} |")
    found = sum(r.found for r in rows.values())
    expected = sum(r.expected for r in rows.values())
    false = sum(r.false_matches for r in rows.values())
    lines.append(f"| **all** | **{found}** | **{expected}** ({found / max(expected, 1):.0%} found) | **{false}** |")
    return "\n".join(lines)


def _corpus_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"verify-recycled-corpus-{CORPUS_VERSION}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_recycled_evaluation_smoke_copies_found_and_no_false_matches() -> None:
    # given: one original, a few of its reposts, the same place filmed elsewhere and another photo
    clips = corpus(_corpus_dir(), originals=ORIGINALS[:1], reposts=SMOKE_REPOSTS, others=("other_photo_camera",))
    # when
    rows, raw = archive_and_match(clips)
    # then
    print("\n" + table(rows))
    assert sum(r.false_matches for r in rows.values()) == 0, raw["matches"]
    # the re-encode, the rotated, barred, captioned and cropped copies, the 3 s excerpt and the JPEG
    # screenshot all find the original
    assert all(r.found == r.expected for r in rows.values()), raw["matches"]


@pytest.mark.evaluation
@pytest.mark.django_db(transaction=True)
def test_recycled_evaluation_full() -> None:
    clips = corpus(_corpus_dir(), originals=ORIGINALS, reposts=tuple(REPOSTS), others=tuple(OTHER_FOOTAGE))
    rows, raw = archive_and_match(clips)
    print("\n" + table(rows))
    print(f"\n{raw['items']} items analysed in {raw['elapsed_s']:.0f} s")
    # the results docs/recycled-footage.md reports: every pair found, nothing false
    assert sum(r.false_matches for r in rows.values()) == 0, raw["matches"]
    assert all(r.found == r.expected for r in rows.values()), raw["matches"]


if __name__ == "__main__":
    sys.exit(
        pytest.main([__file__, "-s", "-q", "-p", "no:cacheprovider", "-m", "evaluation", "-W", "ignore", "--timeout=0"])
    )
