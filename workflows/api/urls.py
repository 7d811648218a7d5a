"""Routes of the REST API, version 1."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from workflows.api.cases.views import CaseViewSet
from workflows.api.exports.views import CaseExportsView, ExportViewSet
from workflows.api.media.views import KeyframeViewSet, MediaItemViewSet
from workflows.api.search.views import SearchView
from workflows.api.sun.views import CaseSunView, SunView

router = DefaultRouter()
router.register("cases", CaseViewSet, basename="case")
router.register("media", MediaItemViewSet, basename="mediaitem")
router.register("keyframes", KeyframeViewSet, basename="keyframe")
router.register("exports", ExportViewSet, basename="export")

urlpatterns = [
    path("search/", SearchView.as_view(), name="search"),
    path("sun/", SunView.as_view(), name="sun"),
    path("cases/<int:case_id>/sun/", CaseSunView.as_view(), name="case-sun"),
    path("cases/<int:case_id>/exports/", CaseExportsView.as_view(), name="case-exports"),
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file, so the CSP needs no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
]
