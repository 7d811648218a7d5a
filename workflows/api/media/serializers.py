"""Serializers for media evidence: items, analysis status, metadata and keyframes."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from verify.models import ContentCredentials, Keyframe, KeyframeText, MediaItem, MediaMetadata, Timestamp
from workflows.api.media.posts import SourcePostSerializer, post_signals, source_post_body
from workflows.api.similarity import SeenBeforeField


class AnalysisErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()


class AnalysisStatusSerializer(serializers.ModelSerializer[MediaItem]):
    """The small answer scripts poll: where the analysis is and why it failed, if it did."""

    error = serializers.SerializerMethodField()
    detail = serializers.SerializerMethodField(
        help_text='While the analysis waits for another attempt after losing its worker: "interrupted: the worker '
        'was lost; retrying (attempt 2 of 3)". Null otherwise.'
    )

    class Meta:
        model = MediaItem
        fields = [
            "id", "state", "stage", "progress_percent", "fetched_bytes", "fetch_total_bytes", "error", "detail",
            "attempts", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(AnalysisErrorSerializer(allow_null=True))
    def get_error(self, item: MediaItem) -> dict[str, str] | None:
        return _analysis_error(item.error_code, item.error_message)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_detail(self, item: MediaItem) -> str | None:
        return _analysis_detail(item.state, item.attempts)


def _analysis_error(code: str, message: str) -> dict[str, str] | None:
    return {"code": code, "message": message} if code else None


def _analysis_detail(state: str, attempts: int) -> str | None:
    if state != MediaItem.State.INTERRUPTED:
        return None
    max_attempts = settings.VERIFY_ANALYSIS_MAX_ATTEMPTS
    if attempts >= max_attempts:
        return f"interrupted: the worker was lost in the last of {max_attempts} attempts"
    return f"interrupted: the worker was lost; retrying (attempt {attempts + 1} of {max_attempts})"


_DATETIME = serializers.DateTimeField()


def analysis_status_body(row: dict[str, Any]) -> dict[str, Any]:
    """Return AnalysisStatusSerializer's answer for a row of status columns.

    The polling path reads plain rows (see workflows.polling); building a serializer's fields
    would cost more than the query. The tests hold the two answers equal.
    """
    return {
        "id": row["id"],
        "state": row["state"],
        "stage": row["stage"],
        "progress_percent": row["progress_percent"],
        "fetched_bytes": row["fetched_bytes"],
        "fetch_total_bytes": row["fetch_total_bytes"],
        "error": _analysis_error(row["error_code"], row["error_message"]),
        "detail": _analysis_detail(row["state"], row["attempts"]),
        "attempts": row["attempts"],
        "updated_at": _DATETIME.to_representation(row["updated_at"]),
    }


class MediaMetadataSerializer(serializers.ModelSerializer[MediaMetadata]):
    ffprobe = serializers.JSONField(source="raw", help_text="ffprobe's JSON answer, without the server's file path.")

    class Meta:
        model = MediaMetadata
        exclude = ["id", "media_item", "raw", "signals"]
        read_only_fields = [f.name for f in MediaMetadata._meta.fields if f.name not in ("id", "media_item")]


class SignalSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    title = serializers.CharField()
    evidence = serializers.CharField()


class ContentCredentialsSerializer(serializers.ModelSerializer[ContentCredentials]):
    """The C2PA state of an original: valid, invalid, absent or unreadable, with what says so."""

    class Meta:
        model = ContentCredentials
        exclude = ["id", "media_item"]
        read_only_fields = [f.name for f in ContentCredentials._meta.fields if f.name not in ("id", "media_item")]


class KeyframeTextSerializer(serializers.ModelSerializer[KeyframeText]):
    """Text Tesseract read in a keyframe: the words with their confidence and box [left, top, width, height]."""

    class Meta:
        model = KeyframeText
        fields = ["text", "words", "languages", "engine"]
        read_only_fields = fields


class KeyframeSerializer(serializers.ModelSerializer[Keyframe]):
    image_url = serializers.SerializerMethodField()
    text = serializers.SerializerMethodField(help_text="Text read in the frame; null when none was found.")

    class Meta:
        model = Keyframe
        fields = [
            "id",
            "timestamp_s",
            "reasons",
            "scene_score",
            "width",
            "height",
            "phash",
            "image_url",
            "source_sha256",
            "ffmpeg_version",
            "text",
        ]
        read_only_fields = fields

    @extend_schema_field(KeyframeTextSerializer(allow_null=True))
    def get_text(self, keyframe: Keyframe) -> dict[str, Any] | None:
        try:
            found = keyframe.text
        except KeyframeText.DoesNotExist:
            return None
        return dict(KeyframeTextSerializer(found).data)

    def get_image_url(self, keyframe: Keyframe) -> str:
        return reverse("keyframe-image", args=[keyframe.pk], request=self.context.get("request"))


class MediaItemSerializer(AnalysisStatusSerializer):
    """A media item as listed: identity, integrity and where its analysis stands."""

    uploaded_by = serializers.CharField(source="uploaded_by.get_username", read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="mediaitem-detail")
    duplicate_of = serializers.SerializerMethodField(
        help_text="The earliest item with the same SHA-256 submitted before this one, among those you may see."
    )
    status_url = serializers.HyperlinkedIdentityField(view_name="mediaitem-status")

    class Meta:
        model = MediaItem
        fields = [
            "id",
            "url",
            "status_url",
            "case",
            "sha256",
            "size_bytes",
            "mime_type",
            "original_filename",
            "duplicate_of",
            "integrity_mismatch",
            "integrity_checked_at",
            "mode",
            "uploaded_by",
            "uploaded_at",
            "state",
            "stage",
            "progress_percent",
            "fetched_bytes",
            "fetch_total_bytes",
            "error",
            "attempts",
            "started_at",
            "finished_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_duplicate_of(self, item: MediaItem) -> int | None:
        # The stored duplicate_of may be in a case this user may not see; the selector that
        # loaded the item names the earliest copy they may see, so without it there is no answer.
        if not hasattr(item, "visible_duplicate_of_id"):
            raise RuntimeError("duplicate_of needs items loaded with visible_duplicate_of_id")
        visible: int | None = item.visible_duplicate_of_id
        return visible


class TimestampSerializer(serializers.ModelSerializer[Timestamp]):
    state_display = serializers.CharField(source="get_state_display", read_only=True)

    class Meta:
        model = Timestamp
        fields = ["tsa_url", "state", "state_display", "digest_sha256", "gen_time", "attempts", "last_error"]
        read_only_fields = fields


class MediaItemDetailSerializer(MediaItemSerializer):
    """A media item with everything its analysis found."""

    metadata = MediaMetadataSerializer(read_only=True, allow_null=True)
    keyframes = KeyframeSerializer(many=True, read_only=True)
    contact_sheet_url = serializers.SerializerMethodField()
    original_url = serializers.HyperlinkedIdentityField(view_name="mediaitem-original")
    matches_url = serializers.HyperlinkedIdentityField(view_name="mediaitem-matches")
    seen_before = SeenBeforeField()
    signals = serializers.SerializerMethodField(help_text="Things to look at, with evidence; never a verdict.")
    # Declared fields leave the class (DRF's metaclass collects them), so this does not shadow
    # Serializer.partial at run time; the type checker only sees the class body.
    partial = serializers.SerializerMethodField(  # type: ignore[assignment]
        help_text='When clearly less decoded than the container declares: "Decoded 6.2 s of a declared 120 s; the '
        'file is truncated or damaged". Null when the whole file decoded or nothing was decoded.'
    )
    c2pa = serializers.SerializerMethodField(help_text="Content Credentials; null where the format carries none.")
    timestamps = TimestampSerializer(many=True, read_only=True, help_text="RFC 3161 timestamps of the original.")
    source_post = serializers.SerializerMethodField(help_text="The post a submitted link led to; null for an upload.")

    class Meta(MediaItemSerializer.Meta):
        fields = [
            *MediaItemSerializer.Meta.fields,
            "original_url",
            "metadata",
            "keyframes",
            "keyframes_truncated",
            "contact_sheet_url",
            "ffmpeg_version",
            "matches_url",
            "seen_before",
            "partial",
            "signals",
            "c2pa",
            "timestamps",
            "source_post",
        ]
        read_only_fields = fields

    @extend_schema_field(SourcePostSerializer(allow_null=True))
    def get_source_post(self, item: MediaItem) -> dict[str, Any] | None:
        return source_post_body(item)

    @extend_schema_field(SignalSerializer(many=True))
    def get_signals(self, item: MediaItem) -> list[dict[str, str]]:
        metadata = getattr(item, "metadata", None)
        return [*(metadata.signals if metadata is not None else []), *post_signals(item)]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_partial(self, item: MediaItem) -> str | None:
        return next((signal["title"] for signal in self.get_signals(item) if signal["code"] == "partial"), None)

    @extend_schema_field(ContentCredentialsSerializer(allow_null=True))
    def get_c2pa(self, item: MediaItem) -> dict[str, Any] | None:
        try:
            found = item.content_credentials
        except ContentCredentials.DoesNotExist:
            return None
        return dict(ContentCredentialsSerializer(found, context=self.context).data)

    def get_contact_sheet_url(self, item: MediaItem) -> str | None:
        if not item.contact_sheet:
            return None
        return reverse("mediaitem-contact-sheet", args=[item.pk], request=self.context.get("request"))
