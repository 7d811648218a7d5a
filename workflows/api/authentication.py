"""API token authentication that reads the user's workflow roles in the same query."""

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from workflows import polling


class RoleTokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``Authorization: Token <key>`` scheme in one query instead of two.

    Every API request needs the user's roles (they decide which cases exist for the user), so
    they are read with the token. Answers and messages are DRF's own.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        user = polling.token_user(key=key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        # The token row itself is not needed again; its creation time stays unread.
        return user, Token.from_db(None, ["key", "user_id"], [key, user.pk])
