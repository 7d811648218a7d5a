"""The reviewer's desk: cases in the admin, scoped to the user, changed only through the services.

The case page is read-only as a Django form; its buttons and small forms post to the views in
workflows.admin.views, which call workflows.services.
"""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet, Value
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from verify.admin import MediaItemAdmin as EvidenceMediaItemAdmin
from verify.models import MediaItem
from workflows import search, selectors, time_zones
from workflows.admin import media_page, presenters, sun_panel, views
from workflows.admin import site as _site  # noqa: F401 - names the desk; account pages for superusers only
from workflows.admin.forms import TimeZoneForm
from workflows.models import Case

DESK_MEDIA = {"css": {"all": ["workflows/desk.css"]}, "js": ["workflows/desk.js"]}


class RoleScopedAdminMixin:
    """Anyone with a workflow role may look; what they see is decided by the selectors."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(selectors.user_roles(request.user))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(selectors.user_roles(request.user))


class SeenBeforeFilter(admin.SimpleListFilter):
    """Cases whose footage is also in another case the user may see (the selector's annotation)."""

    title = "seen before"
    parameter_name = "seen_before"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Case]) -> QuerySet[Case]:
        if self.value() not in ("yes", "no"):
            return queryset
        return selectors.case_list_filter_seen_before(cases=queryset, user=request.user, seen=self.value() == "yes")


@admin.register(Case)
class CaseAdmin(RoleScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "id",
        "title",
        "search_match",
        "seen_before_marker",
        "status",
        "verdict",
        "assignee",
        "opened",
        "age",
        "media_count",
        "thumbnail",
    ]
    list_display_links = ["title"]
    list_filter = [SeenBeforeFilter, "status", "verdict", ("assignee", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["assignee"]
    # The search box runs workflows.search (ranked, with the matching passage); these name what it reads.
    search_fields = ["title"]
    search_help_text = (
        "Title, claim, place, source URL, notes, text in keyframes, device, or a SHA-256 (its first characters)."
    )
    list_per_page = 50
    actions = None
    fields = [
        "title",
        "claim",
        "source_url",
        "claimed_location",
        "claimed_date",
        "ocr_languages",
        "status",
        "verdict",
        "verdict_rationale",
        "assignee",
        "created_by",
        "created_at",
    ]

    class Media:
        css = DESK_MEDIA["css"]
        js = DESK_MEDIA["js"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Case]:
        cases = selectors.case_desk_list_seen_before_for_user(user=request.user)
        terms = self._search_terms(request)
        if not terms:
            return cases
        # The search box runs the archive search here, so every part of the list sees its rank;
        # like the API, it ranks the newest RANKED_MAX matches, not every match in the archive.
        candidates = search.case_search_candidates(user=request.user, q=terms)
        if candidates is not None:
            cases = cases.filter(pk__in=candidates)
        return search.case_search_apply(cases=cases, q=terms).annotate(search_terms=Value(terms))

    @staticmethod
    def _search_terms(request: HttpRequest) -> str:
        return (
            request.GET.get("q", "").strip()
            if request.resolver_match and request.resolver_match.url_name == "workflows_case_changelist"
            else ""
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Case], search_term: str
    ) -> tuple[QuerySet[Case], bool]:
        return queryset, False  # searched in get_queryset

    def get_ordering(self, request: HttpRequest) -> list[str]:
        # Best match first while searching, unless the reviewer sorts by a column.
        if self._search_terms(request) and "o" not in request.GET:
            return ["-search_rank", "-created_at", "-id"]
        return list(super().get_ordering(request))

    @admin.display(description="match")
    def search_match(self, case: Case) -> str:
        terms = getattr(case, "search_terms", None)
        return search.search_snippet(case, terms) if terms else ""

    # Cases are opened by submissions and changed only through the desk's service calls.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="age", ordering="created_at")
    def age(self, case: Case) -> str:
        return timesince(case.created_at).split(",")[0]

    @admin.display(description="media", ordering="media_count")
    def media_count(self, case: Case) -> int:
        return getattr(case, "media_count", 0)

    @admin.display(description="seen before", ordering="-seen_before")
    def seen_before_marker(self, case: Case) -> str:
        if not getattr(case, "seen_before", False):
            return ""
        first = getattr(case, "seen_before_case_id", None)
        if first is None:
            return format_html('<span class="seen-badge">{}</span>', "seen before")
        return format_html(
            '<a class="seen-badge" href="{}" title="{}">seen in case {}</a>',
            reverse("admin:workflows_case_change", args=[first]),
            "Footage of this case is also in another case; this one had it first",
            first,
        )

    @admin.display(description="opened", ordering="created_at")
    def opened(self, case: Case) -> str:
        return time_zones.zoned_time(case.created_at)

    @admin.display(description="keyframe")
    def thumbnail(self, case: Case) -> str:
        keyframe_id = getattr(case, "thumbnail_keyframe_id", None)
        if keyframe_id is None:
            return "—"
        url = reverse("keyframe-image", args=[keyframe_id])
        return format_html(
            '<a class="kf-blur kf-thumb" href="{}" target="_blank" rel="noopener" title="Click to reveal">'
            '<img src="{}" alt="first keyframe" loading="lazy"></a>',
            url,
            url,
        )

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        desk = [
            path("<int:case_id>/transition/", view(views.case_transition_view), name="workflows_case_transition"),
            path("<int:case_id>/notes/", view(views.case_note_view), name="workflows_case_note"),
            path(
                "<int:case_id>/notes/<int:note_id>/version/",
                view(views.case_note_version_view),
                name="workflows_case_note_version",
            ),
            path("<int:case_id>/checklist/", view(views.case_checklist_view), name="workflows_case_checklist"),
            path("<int:case_id>/assignment/", view(views.case_assign_view), name="workflows_case_assign"),
            path("<int:case_id>/exports/", view(views.case_export_view), name="workflows_case_export"),
            path("<int:case_id>/link/", view(views.case_link_view), name="workflows_case_link"),
            path(
                "<int:case_id>/ocr-languages/", view(views.case_ocr_languages_view), name="workflows_case_ocr_languages"
            ),
            path("sun/", view(sun_panel.sun_view), name="workflows_case_sun"),
            path("time-zone/", view(views.time_zone_view), name="workflows_case_time_zone"),
            path(
                "keyframe-preference/",
                view(views.keyframe_preference_view),
                name="workflows_case_keyframe_preference",
            ),
        ]
        return desk + super().get_urls()  # type: ignore[return-value]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {
            "title": "Cases",
            "reveal_keyframes": selectors.reviewer_reveals_keyframes(user=request.user),
            "time_zone_form": TimeZoneForm(initial={"time_zone": selectors.reviewer_time_zone(user=request.user)}),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Case | None = None,
    ) -> TemplateResponse:
        if obj is not None:
            context.update(presenters.case_desk_context(request, obj), title=f"Case {obj.pk}")
        return super().render_change_form(request, context, add, change, form_url, obj)  # type: ignore[return-value]


admin.site.unregister(MediaItem)


@admin.register(MediaItem)
class MediaItemAdmin(RoleScopedAdminMixin, EvidenceMediaItemAdmin):
    """Media evidence, read-only, limited to the cases the user may see."""

    inlines = []  # the page shows metadata and keyframes in words (media_page)

    class Media:
        css = DESK_MEDIA["css"]
        js = DESK_MEDIA["js"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[MediaItem]:
        return selectors.media_item_list_for_user(user=request.user).select_related("case")

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: MediaItem | None = None,
    ) -> TemplateResponse:
        # The page is workflows/templates/admin/verify/mediaitem/change_form.html, not a field dump.
        if obj is not None:
            context.update(media_page.media_page_context(request, obj.pk), title=f"Media #{obj.pk}")
        return super().render_change_form(request, context, add, change, form_url, obj)  # type: ignore[return-value]

    # The stored duplicate_of may be in a case the user may not see: show the selector's answer.
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        shown = super().get_readonly_fields(request, obj)
        return tuple("visible_duplicate_of" if name == "duplicate_of" else name for name in shown)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.get_readonly_fields(request, obj)

    @admin.display(description="duplicate of")
    def visible_duplicate_of(self, item: MediaItem) -> str:
        duplicate_id = getattr(item, "visible_duplicate_of_id", None)
        if duplicate_id is None:
            return "—"
        url = reverse("admin:verify_mediaitem_change", args=[duplicate_id])
        return format_html('<a href="{}">media #{}</a>', url, duplicate_id)
