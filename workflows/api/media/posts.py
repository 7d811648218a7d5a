"""The post a link-submitted media item came from, and how its times compare with the claim."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from verify.fetching.models import SourcePost
from verify.fetching.timing import capture_time_of, post_timing_signals
from verify.models import MediaItem


class SourcePostSerializer(serializers.ModelSerializer[SourcePost]):
    """The post as fetched: who posted what and when, the counts then, and what read it."""

    class Meta:
        model = SourcePost
        fields = [
            "id", "submitted_url", "state", "platform", "canonical_url", "post_id", "title", "author_name",
            "author_id", "author_url", "posted_at", "posted_at_source", "text", "view_count", "forward_count",
            "like_count", "forwarded_from", "forwarded_from_url", "album_urls", "thumbnail_url", "streams_merged",
            "page_url", "page_sha256", "page_size_bytes", "fetched_at", "extractor", "ytdlp_version", "removed_at",
            "removed_message", "info", "info_truncated",
        ]  # fmt: skip
        read_only_fields = fields


def source_post_body(item: MediaItem) -> dict[str, Any] | None:
    """Return the item's post as the API shows it, or None for an uploaded file."""
    if item.source_post_id is None:
        return None
    return dict(SourcePostSerializer(item.source_post).data)


def post_signals(item: MediaItem) -> list[dict[str, str]]:
    """Return the signals comparing when the file was filmed, posted and claimed."""
    post = item.source_post if item.source_post_id else None
    captured, captured_source = capture_time_of(getattr(item, "metadata", None))
    return post_timing_signals(
        captured=captured,
        captured_source=captured_source,
        posted_at=post.posted_at if post else None,
        posted_at_source=post.posted_at_source if post else "",
        claimed_date=item.case.claimed_date,
    )
