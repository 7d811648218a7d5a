"""Evidence of a match: the matched frames side by side, what was done to the copy, in a reviewer's words.

Both the API (``workflows.api.similarity``) and the desk (``workflows.selectors``) show a match
through these functions, so a pair's pictures and a transformation's label are decided once.

Pictures come from the stored keyframes. A match found on the dense frame hashes pairs moments
that may fall between keyframes, and dense hashes keep no picture: a pair is then shown with
the keyframe nearest each moment, if one is within ``NEAREST_KEYFRAME_S``, and says which
moment that keyframe shows. No frame is decoded while a page or an API answer is built: the
web process never runs ffmpeg on an untrusted original, and nothing is shown that the
analysis did not store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from verify.models import Keyframe, MediaMatch

# At 2 dense frames a second, a moment and the nearest frame hashed beside it are 0.5 s apart
# at most: a keyframe this close shows the same picture in all but the fastest pans.
NEAREST_KEYFRAME_S = 0.6

TRANSFORMATION_LABELS = {
    "scaled": "Scaled",
    "cropped": "Cropped",
    "bars_removed": "Black bars added or removed",
    "rotated": "Rotated",
    "mirrored": "Mirrored",
    "logo": "Logo or caption over the picture",
    "still_from_video": "Still from the video",
    "same_audio": "Same soundtrack",
}
# The order chips are shown in: the picture first, then where it came from, then the sound.
_ORDER = list(TRANSFORMATION_LABELS)

KeyframeIndex = dict[tuple[int, float], Keyframe]


@dataclass(frozen=True)
class MatchedFramePair:
    """One moment of this item's footage next to the same moment in the other item, with the keyframes shown."""

    time_s: float
    other_time_s: float
    keyframe: Keyframe | None
    other_keyframe: Keyframe | None


@dataclass(frozen=True)
class Transformation:
    """How the other item differs, as a code (stored), a label (shown) and, for a still, the moment it shows."""

    code: str
    label: str
    moment_s: float | None = None


def moment_label(seconds: float) -> str:
    """Return a moment in footage as mm:ss.s (h:mm:ss.s past an hour)."""
    tenths = round(seconds * 10)
    minutes, rest = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    clock = f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{clock}" if hours else clock


def keyframe_key(media_item_id: int, timestamp_s: float) -> tuple[int, float]:
    """Return the key of a keyframe by item and time; matches store times rounded to the millisecond."""
    return media_item_id, round(timestamp_s, 3)


def keyframe_index(media_item_ids: Iterable[int]) -> KeyframeIndex:
    """Return the keyframes of these items by (item, time), in one query."""
    rows = Keyframe.objects.filter(media_item__in=set(media_item_ids)).order_by("media_item", "timestamp_s")
    return {keyframe_key(k.media_item_id, k.timestamp_s): k for k in rows}


def still_ids(keyframes: KeyframeIndex) -> set[int]:
    """Return the items among the indexed ones that are photos: their one keyframe is the picture itself."""
    return {k.media_item_id for k in keyframes.values() if Keyframe.Reason.PHOTO in k.reasons}


def nearest_keyframe(keyframes: KeyframeIndex, media_item_id: int, time_s: float) -> Keyframe | None:
    """Return the item's keyframe at time_s, else the nearest within ``NEAREST_KEYFRAME_S``, else None."""
    exact = keyframes.get(keyframe_key(media_item_id, time_s))
    if exact is not None:
        return exact
    near = [
        k for (i, t), k in keyframes.items() if i == media_item_id and abs(t - time_s) <= NEAREST_KEYFRAME_S
    ]  # fmt: skip
    return min(near, key=lambda k: abs(k.timestamp_s - time_s), default=None)


def frame_pairs(
    *, media_item_id: int, other_id: int, times: Sequence[Sequence[float]], keyframes: KeyframeIndex
) -> list[MatchedFramePair]:
    """Return each matched (time, other time) with the keyframes that show it on each side."""
    return [
        MatchedFramePair(
            time_s=a,
            other_time_s=b,
            keyframe=nearest_keyframe(keyframes, media_item_id, a),
            other_keyframe=nearest_keyframe(keyframes, other_id, b),
        )
        for a, b in times
    ]


def strip(pairs: Sequence[MatchedFramePair]) -> list[MatchedFramePair]:
    """Return the pairs worth a place in a side-by-side strip: each picture pair once, the fullest first.

    Dense pairs half a second apart often share their nearest keyframes. Pairs with both
    pictures are shown; without any, those with one; without any picture at all, every pair,
    so the times are still there to read.
    """
    for wanted in (2, 1):
        shown: list[MatchedFramePair] = []
        seen: set[tuple[int | None, int | None]] = set()
        for pair in pairs:
            key = (pair.keyframe.pk if pair.keyframe else None, pair.other_keyframe.pk if pair.other_keyframe else None)
            if sum(k is not None for k in key) < wanted or key in seen:
                continue
            seen.add(key)
            shown.append(pair)
        if shown:
            return shown
    return list(pairs)


def transformations_of(match: MediaMatch, *, stills: set[int]) -> list[Transformation]:
    """Return how the other item of a match differs, labelled, in a fixed order.

    A still matched to a video names the moment of the video it shows: the video's side of the
    first pair, whichever of the two items is the still.
    """
    codes = list(match.transformations)
    if match.mirrored and "mirrored" not in codes:
        codes.append("mirrored")  # the keyframe matcher says so by its flag alone
    found = []
    for code in sorted(set(codes), key=lambda c: (_ORDER.index(c) if c in _ORDER else len(_ORDER), c)):
        label = TRANSFORMATION_LABELS.get(code, code.replace("_", " ").capitalize())
        moment_s = None
        if code == "still_from_video" and match.frame_pairs:
            this_s, other_s = match.frame_pairs[0]
            moment_s = other_s if match.media_item_id in stills else this_s
            label = f"{label} at {moment_label(moment_s)}"
        found.append(Transformation(code=code, label=label, moment_s=moment_s))
    return found
