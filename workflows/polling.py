"""The polling path: who holds an API token, and where one item's analysis stands.

Scripts poll ``GET /api/v1/media/{id}/status/`` hundreds of times a second. Each poll needs
the token's user, that user's workflow roles and the item, and building those three queries
through the ORM costs several times more than running them. So this module writes the two
statements out, once per process, from the models' own table and column names:

- ``token_user``: the token, its user and the user's role groups, in one query;
- ``media_item_status_for_user``: the item's status columns, filtered by the same visibility
  rule as ``selectors.media_item_list_for_user``.

The tests hold both to the ORM versions for every role and every way of seeing a case.
"""

from __future__ import annotations

import datetime
import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from verify.models import MediaItem
from workflows.models import Case
from workflows.selectors import roles_from_group_names, user_roles
from workflows.transitions import Role

# The user fields the API reads; any other field loads on first access (Django's deferred fields).
USER_FIELDS = frozenset({"id", "username", "is_active", "is_superuser", "is_staff"})
# The columns of the status answer, in order.
STATUS_FIELDS = (
    "id", "state", "stage", "progress_percent", "fetched_bytes", "fetch_total_bytes", "error_code", "error_message",
    "attempts", "updated_at",
)  # fmt: skip
# Largest id a bigint column holds; a larger number in a URL is simply not found.
_MAX_ID = 2**63 - 1


# The statements, with {names} filled in from the models' metadata (quoted) and every value
# bound as a parameter.
_KEY_HOLDER_SQL = """
SELECT {user_columns}, g.{group_name}
FROM {token} t
JOIN {user} u ON u.{user_id} = t.{token_user}
LEFT JOIN {membership} ug ON ug.{membership_user} = u.{user_id}
LEFT JOIN {group} g ON g.{group_id} = ug.{membership_group} AND g.{group_name} IN ({role_placeholders})
WHERE t.{token_key} = %s
"""
_STATUS_SQL = "SELECT {status_columns} FROM {media} m WHERE m.{media_id} = %s"
# An analyst sees the cases they opened, are assigned to, or submitted media to; each test is
# an index lookup, however many cases the analyst has.
_ANALYST_VISIBILITY_SQL = """
AND (
  EXISTS (SELECT 1 FROM {case} c WHERE c.{case_id} = m.{media_case}
          AND (c.{case_created_by} = %s OR c.{case_assignee} = %s))
  OR EXISTS (SELECT 1 FROM {media} u WHERE u.{media_case} = m.{media_case} AND u.{media_uploaded_by} = %s)
)
"""


@functools.cache
def _user_field_names() -> tuple[str, ...]:
    # Model.from_db takes the loaded values in the model's field order.
    return tuple(field.attname for field in get_user_model()._meta.concrete_fields if field.attname in USER_FIELDS)


@functools.cache
def _names() -> dict[str, str]:
    quote = connection.ops.quote_name
    user_model = get_user_model()
    membership = user_model.groups.through

    def column(model: Any, field: str) -> str:
        return quote(model._meta.get_field(field).column)

    return {
        "token": quote(Token._meta.db_table),
        "token_key": column(Token, "key"),
        "token_user": column(Token, "user"),
        "user": quote(user_model._meta.db_table),
        "user_id": column(user_model, "id"),
        "user_columns": ", ".join(f"u.{column(user_model, name)}" for name in _user_field_names()),
        "membership": quote(membership._meta.db_table),
        "membership_user": column(membership, "user"),
        "membership_group": column(membership, "group"),
        "group": quote(Group._meta.db_table),
        "group_id": column(Group, "id"),
        "group_name": column(Group, "name"),
        "role_placeholders": ", ".join(["%s"] * len(Role)),
        "media": quote(MediaItem._meta.db_table),
        "media_id": column(MediaItem, "id"),
        "media_case": column(MediaItem, "case"),
        "media_uploaded_by": column(MediaItem, "uploaded_by"),
        "status_columns": ", ".join(f"m.{column(MediaItem, name)}" for name in STATUS_FIELDS),
        "case": quote(Case._meta.db_table),
        "case_id": column(Case, "id"),
        "case_created_by": column(Case, "created_by"),
        "case_assignee": column(Case, "assignee"),
    }


@functools.cache
def _sql(template: str) -> str:
    return " ".join(template.format(**_names()).split())


def token_user(*, key: str) -> Any | None:
    """Return the user holding API token ``key``, with their workflow roles loaded, or None.

    The user carries only USER_FIELDS; reading another field costs one query then.
    """
    with connection.cursor() as cursor:
        cursor.execute(_sql(_KEY_HOLDER_SQL), [*(role.value for role in Role), key])
        rows = cursor.fetchall()
    if not rows:
        return None
    user_model = get_user_model()
    names = _user_field_names()
    user = user_model.from_db(connection.alias, names, rows[0][: len(names)])
    roles = roles_from_group_names(user, {row[-1] for row in rows if row[-1]})
    user._workflow_roles = roles  # type: ignore[attr-defined]
    return user


def media_item_status_for_user(*, user: Any, pk: Any) -> dict[str, Any] | None:
    """Return the status columns of media item ``pk`` if this user may see it, else None."""
    try:
        item_id = int(pk)
    except (TypeError, ValueError):
        return None
    if not 0 < item_id <= _MAX_ID:
        return None
    roles = user_roles(user)
    if not roles:
        return None
    everyone = bool(roles & {Role.REVIEWER, Role.LEAD})
    params = [item_id] if everyone else [item_id, user.pk, user.pk, user.pk]
    with connection.cursor() as cursor:
        cursor.execute(_sql(_STATUS_SQL if everyone else _STATUS_SQL + _ANALYST_VISIBILITY_SQL), params)
        row = cursor.fetchone()
    if row is None:
        return None
    status = dict(zip(STATUS_FIELDS, row, strict=True))
    updated_at = status["updated_at"]
    if isinstance(updated_at, datetime.datetime) and timezone.is_naive(updated_at):
        # SQLite hands back naive datetimes; the database stores them in UTC.
        status["updated_at"] = timezone.make_aware(updated_at, datetime.UTC)
    return status
