"""API for recycled footage: the matches of a media item and the ``seen_before`` summaries.

Visibility is the caller's: every function takes the ids of the cases the requesting user may
see, so a user never learns of a case they may not see, nor sees a frame of one. A match shows
its evidence: each matched pair's times and the keyframes that show them
(``workflows.match_evidence``), how the copy differs, and how alike pictures and sound are.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from verify.models import Keyframe, MediaItem, MediaMatch
from verify.similarity import matching
from workflows import match_evidence, selectors


class MatchedCaseSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    title = serializers.CharField()
    verdict = serializers.CharField(help_text="Empty while the case has no verdict.")


class FramePairSerializer(serializers.Serializer[Any]):
    time_s = serializers.FloatField(help_text="Time of the matched frame in this item.")
    other_time_s = serializers.FloatField(help_text="Time of the matching frame in the other item.")
    image_url = serializers.URLField(
        allow_null=True, help_text="The keyframe showing time_s (or the nearest within 0.6 s); null if none is stored."
    )
    image_time_s = serializers.FloatField(allow_null=True, help_text="The moment that keyframe shows.")
    other_image_url = serializers.URLField(allow_null=True, help_text="The same for the other item.")
    other_image_time_s = serializers.FloatField(allow_null=True)


class TransformationSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(
        help_text="scaled, cropped, bars_removed, rotated, mirrored, logo, still_from_video or same_audio."
    )
    # A declared field, taken off the class by DRF's metaclass; it only shadows Field.label for mypy.
    label = serializers.CharField(  # type: ignore[assignment]
        help_text="The same in words; a still names the video's moment as mm:ss.s."
    )
    moment_s = serializers.FloatField(allow_null=True, help_text="still_from_video: the moment of the video, s.")


class MediaMatchSerializer(serializers.ModelSerializer[MediaMatch]):
    """Another media item showing this item's footage, in a case the user may see."""

    media_item = serializers.IntegerField(source="other_id", help_text="The matching media item.")
    url = serializers.SerializerMethodField()
    uploaded_at = serializers.DateTimeField(source="other.uploaded_at")
    case = serializers.SerializerMethodField()
    frame_pairs = serializers.SerializerMethodField()
    transformations = serializers.SerializerMethodField()

    class Meta:
        model = MediaMatch
        fields = [
            "media_item",
            "url",
            "uploaded_at",
            "case",
            "exact",
            "similarity",
            "matched_frame_count",
            "frame_pairs",
            "time_offset_s",
            "mirrored",
            "transformations",
            "audio_similarity",
            "audio_time_offset_s",
        ]
        read_only_fields = fields

    def get_url(self, match: MediaMatch) -> str:
        return reverse("mediaitem-detail", args=[match.other_id], request=self.context.get("request"))

    @extend_schema_field(MatchedCaseSerializer)
    def get_case(self, match: MediaMatch) -> dict[str, Any]:
        return selectors.case_summary(match.other.case)

    @extend_schema_field(FramePairSerializer(many=True))
    def get_frame_pairs(self, match: MediaMatch) -> list[dict[str, Any]]:
        pairs = match_evidence.frame_pairs(
            media_item_id=match.media_item_id,
            other_id=match.other_id,
            times=match.frame_pairs,
            keyframes=self.context["keyframes"],
        )
        return [
            {
                "time_s": pair.time_s,
                "other_time_s": pair.other_time_s,
                "image_url": self._image_url(pair.keyframe),
                "image_time_s": pair.keyframe.timestamp_s if pair.keyframe else None,
                "other_image_url": self._image_url(pair.other_keyframe),
                "other_image_time_s": pair.other_keyframe.timestamp_s if pair.other_keyframe else None,
            }
            for pair in pairs
        ]

    @extend_schema_field(TransformationSerializer(many=True))
    def get_transformations(self, match: MediaMatch) -> list[dict[str, Any]]:
        found = match_evidence.transformations_of(match, stills=self.context["stills"])
        return [{"code": t.code, "label": t.label, "moment_s": t.moment_s} for t in found]

    def _image_url(self, keyframe: Keyframe | None) -> str | None:
        if keyframe is None:
            return None
        return reverse("keyframe-image", args=[keyframe.pk], request=self.context.get("request"))


class SeenBeforeItemSerializer(serializers.Serializer[Any]):
    media_item = serializers.IntegerField()
    uploaded_at = serializers.DateTimeField()
    case = MatchedCaseSerializer()
    exact = serializers.BooleanField(help_text="The same bytes (SHA-256).")
    similarity = serializers.FloatField()
    matched_frame_count = serializers.IntegerField()
    mirrored = serializers.BooleanField()
    media_item_matched = serializers.IntegerField(help_text="Which of this case's items it matched.")


class SeenBeforeSerializer(serializers.Serializer[Any]):
    """Where this footage was also seen: other cases holding the same or recycled footage."""

    seen = serializers.BooleanField()
    count = serializers.IntegerField()
    earliest = SeenBeforeItemSerializer(allow_null=True)
    items = SeenBeforeItemSerializer(many=True)


def seen_before_summary(*, media_items: Any, visible_case_ids: Any) -> dict[str, Any]:
    """Return the ``seen_before`` summary of a media item (a list of one) or of a case's items."""
    found = matching.seen_before(media_items=media_items, visible_case_ids=visible_case_ids)
    cases = selectors.case_summaries(case_ids={entry["case_id"] for entry in found})
    items = [{**entry, "case": cases[entry["case_id"]]} for entry in found]
    return {"seen": bool(items), "count": len(items), "earliest": items[0] if items else None, "items": items}


@extend_schema_field(SeenBeforeSerializer)
class SeenBeforeField(serializers.Field):  # type: ignore[type-arg]
    """The ``seen_before`` summary of a media item or of a case (over all its items).

    Reads the ids of the cases the user may see from the serializer context
    (``visible_case_ids``), which the view puts there; without it the field refuses to guess.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.update(source="*", read_only=True)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> dict[str, Any]:
        visible_case_ids = self.context.get("visible_case_ids")
        if visible_case_ids is None:
            raise RuntimeError("seen_before needs visible_case_ids in the serializer context")
        items = [value] if isinstance(value, MediaItem) else value.media_items.all()
        return SeenBeforeSerializer(seen_before_summary(media_items=items, visible_case_ids=visible_case_ids)).data


def media_matches_response(*, request: Request, media_item: MediaItem, visible_case_ids: Any) -> Response:
    """Answer ``GET /media/{id}/matches/``: the item's matches in cases the user may see."""
    matches = list(
        matching.media_match_list(media_item=media_item, visible_case_ids=visible_case_ids).select_related(
            "other__case"
        )
    )
    # Only the keyframes of this item and of the matched items the user may see are read.
    keyframes = match_evidence.keyframe_index({media_item.pk, *(m.other_id for m in matches)})
    context = {"request": request, "keyframes": keyframes, "stills": match_evidence.still_ids(keyframes)}
    return Response(MediaMatchSerializer(matches, many=True, context=context).data)
