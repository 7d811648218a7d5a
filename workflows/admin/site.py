"""The desk's name, and the admin pages only superusers manage: users, groups, tokens, lockouts.

Reviewers and analysts see cases and media; an account's roles, whatever model permissions it
may also hold, never open the account pages.
"""

from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import HttpRequest
from rest_framework.authtoken.models import TokenProxy

DESK_NAME = "Reviewer's desk"

admin.site.site_header = DESK_NAME
admin.site.site_title = DESK_NAME
admin.site.index_title = "Cases and media"


class SuperuserOnlyMixin:
    """Only a superuser sees or touches these pages; for anyone else they do not exist."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self.has_module_permission(request) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request) and super().has_delete_permission(request, obj)  # type: ignore[misc]


def superuser_only(*models: type) -> None:
    """Re-register the admin of each model behind ``SuperuserOnlyMixin``."""
    for model in models:
        if not admin.site.is_registered(model):
            continue
        registered: type[admin.ModelAdmin[Any]] = type(admin.site.get_model_admin(model))
        admin.site.unregister(model)
        admin.site.register(model, type(f"SuperuserOnly{registered.__name__}", (SuperuserOnlyMixin, registered), {}))


# The apps that register these admins come before workflows in INSTALLED_APPS.
superuser_only(get_user_model(), Group, TokenProxy, AccessAttempt, AccessLog, AccessFailureLog)
