"""Read operations on cases and their media, always scoped to the requesting user."""

from typing import Any

from django.db.models import Count, Prefetch, QuerySet

from verify.models import Keyframe, MediaItem
from workflows.models import Case


def case_list_for_user(*, user: Any) -> QuerySet[Case]:
    """Return the cases this user may see, with their media items loaded."""
    if not user.is_authenticated:
        return Case.objects.none()
    media = MediaItem.objects.select_related("metadata").annotate(keyframe_count=Count("keyframes"))
    return Case.objects.prefetch_related(Prefetch("media_items", queryset=media)).order_by("-created_at", "-id")


def media_item_list_for_user(*, user: Any) -> QuerySet[MediaItem]:
    """Return the media items in cases this user may see."""
    if not user.is_authenticated:
        return MediaItem.objects.none()
    return MediaItem.objects.filter(case__in=case_list_for_user(user=user).values("pk"))


def media_item_detail_for_user(*, user: Any) -> QuerySet[MediaItem]:
    """Return the visible media items with metadata and keyframes loaded for a detail view."""
    keyframes = Keyframe.objects.order_by("timestamp_s")
    return (
        media_item_list_for_user(user=user)
        .select_related("metadata")
        .prefetch_related(Prefetch("keyframes", queryset=keyframes))
    )


def keyframe_list_for_user(*, user: Any) -> QuerySet[Keyframe]:
    """Return keyframes of media items this user may see."""
    return Keyframe.objects.filter(media_item__in=media_item_list_for_user(user=user).values("pk"))
