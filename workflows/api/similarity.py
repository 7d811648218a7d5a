"""API for recycled footage: the matches of a media item and the ``seen_before`` summaries.

Visibility is the caller's: every function takes the ids of the cases the requesting user may
see, so a user never learns of a case they may not see.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from verify.models import MediaItem, MediaMatch
from verify.similarity import matching
from workflows import selectors


class MatchedCaseSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    title = serializers.CharField()
    verdict = serializers.CharField(help_text="Empty while the case has no verdict.")


class FramePairSerializer(serializers.Serializer[Any]):
    time_s = serializers.FloatField(help_text="Time of the keyframe in this item.")
    other_time_s = serializers.FloatField(help_text="Time of the matching keyframe in the other item.")


class MediaMatchSerializer(serializers.ModelSerializer[MediaMatch]):
    """Another media item showing this item's footage, in a case the user may see."""

    media_item = serializers.IntegerField(source="other_id", help_text="The matching media item.")
    url = serializers.SerializerMethodField()
    uploaded_at = serializers.DateTimeField(source="other.uploaded_at")
    case = serializers.SerializerMethodField()
    frame_pairs = serializers.SerializerMethodField()

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
        ]
        read_only_fields = fields

    def get_url(self, match: MediaMatch) -> str:
        return reverse("mediaitem-detail", args=[match.other_id], request=self.context.get("request"))

    @extend_schema_field(MatchedCaseSerializer)
    def get_case(self, match: MediaMatch) -> dict[str, Any]:
        return selectors.case_summary(match.other.case)

    @extend_schema_field(FramePairSerializer(many=True))
    def get_frame_pairs(self, match: MediaMatch) -> list[dict[str, float]]:
        return [{"time_s": a, "other_time_s": b} for a, b in match.frame_pairs]


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
    matches = matching.media_match_list(media_item=media_item, visible_case_ids=visible_case_ids)
    matches = matches.select_related("other__case")
    return Response(MediaMatchSerializer(matches, many=True, context={"request": request}).data)
