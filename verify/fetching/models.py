"""The post a link pointed to, as fetched: evidence beside the media it carried.

Registered with the verify app through ``verify.models``; MediaItem links here by model label.
"""

from django.conf import settings
from django.db import models


class SourcePost(models.Model):
    """One fetch of one post (or page, or direct media URL): who posted what, when, as seen at fetch time.

    Every value comes from the extractor's answer or the page as fetched, with where it came from;
    a value the source does not give stays empty. A re-fetch is a new row; a re-fetch that finds
    the post gone sets ``removed_at`` on the rows of the earlier fetches.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be fetched"
        FETCHED = "fetched", "Fetched"
        FAILED = "failed", "Fetch failed"

    submitted_url = models.URLField(max_length=2000, db_index=True)
    refetch = models.BooleanField(default=False, help_text="Asked to fetch again rather than re-use an earlier fetch.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)

    platform = models.CharField(max_length=30, blank=True, help_text="telegram, youtube, x, tiktok, web or direct.")
    canonical_url = models.URLField(max_length=2000, blank=True, db_index=True)
    post_id = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=1000, blank=True)
    author_name = models.CharField(max_length=300, blank=True)
    author_id = models.CharField(max_length=300, blank=True)
    author_url = models.URLField(max_length=2000, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True, help_text="When it was posted, UTC.")
    posted_at_source = models.CharField(max_length=200, blank=True, help_text="The field posted_at was read from.")
    text = models.TextField(blank=True, help_text="The post's text or caption.")
    view_count = models.PositiveBigIntegerField(null=True, blank=True)
    forward_count = models.PositiveBigIntegerField(null=True, blank=True, help_text="Forwards, reposts or shares.")
    like_count = models.PositiveBigIntegerField(null=True, blank=True)
    forwarded_from = models.CharField(max_length=500, blank=True)
    forwarded_from_url = models.URLField(max_length=2000, blank=True)
    album_urls = models.JSONField(default=list, blank=True, help_text="The post's pictures and clips, in order.")
    thumbnail_url = models.URLField(max_length=2000, blank=True)
    info = models.JSONField(default=dict, blank=True, help_text="The extractor's answer (size-capped).")
    info_truncated = models.BooleanField(default=False)
    streams_merged = models.CharField(
        max_length=300, blank=True, help_text="Separate video and audio streams joined by stream copy, which."
    )
    page = models.FileField(max_length=255, blank=True, editable=False, help_text="The post page as fetched.")
    page_url = models.URLField(max_length=2000, blank=True)
    page_sha256 = models.CharField(max_length=64, blank=True)
    page_size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    extractor = models.CharField(max_length=100, blank=True, help_text="The yt-dlp extractor that read the post.")
    ytdlp_version = models.CharField(max_length=40, blank=True)
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="A later re-fetch found the post gone at this time."
    )
    removed_message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"post {self.canonical_url or self.submitted_url}"
