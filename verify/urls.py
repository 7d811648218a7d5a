"""Project URLs: the admin (reviewer's desk) and the REST API under /api/v1/."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("workflows.api.urls")),
]

handler500 = "verify.api.views.server_error"
