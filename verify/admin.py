"""Admin views of media evidence: everything the analysis recorded is read-only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from verify.models import Keyframe, MediaItem, MediaMetadata


class ReadOnlyAdminMixin:
    """Evidence is written by the pipeline only: the admin can look, never add, edit or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MediaMetadataInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = MediaMetadata
    exclude = ["raw"]


class KeyframeInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Keyframe
    fields = ["timestamp_s", "reasons", "scene_score", "width", "height", "phash"]


@admin.register(MediaItem)
class MediaItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "case", "original_filename", "state", "stage", "progress_percent", "uploaded_at"]
    list_filter = ["state", "mode"]
    search_fields = ["sha256", "original_filename", "case__title"]
    # The evidence fields are not editable on the model, so they are listed to be shown at all.
    readonly_fields = (
        "case",
        "sha256",
        "size_bytes",
        "mime_type",
        "original_filename",
        "duplicate_of",
        "uploaded_by",
        "uploaded_at",
        "mode",
        "state",
        "stage",
        "progress_percent",
        "error_code",
        "error_message",
        "attempts",
        "started_at",
        "finished_at",
        "keyframes_truncated",
        "ffmpeg_version",
        "integrity_checked_at",
        "integrity_mismatch",
    )
    fields = readonly_fields
    inlines = [MediaMetadataInline, KeyframeInline]
