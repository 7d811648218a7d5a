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
    inlines = [MediaMetadataInline, KeyframeInline]
