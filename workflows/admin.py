"""Admin views of cases."""

from django.contrib import admin

from verify.models import MediaItem
from workflows.models import Case


class MediaItemInline(admin.TabularInline):
    model = MediaItem
    fields = ("original_filename", "sha256", "size_bytes", "state", "stage", "progress_percent", "error_code")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "created_by", "created_at"]
    list_filter = ["status"]
    search_fields = ["title", "claim", "source_url", "media_items__sha256"]
    readonly_fields = ["status", "created_by", "created_at", "updated_at"]
    inlines = [MediaItemInline]

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
