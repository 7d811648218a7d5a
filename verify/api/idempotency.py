"""``Idempotency-Key`` for POST endpoints: a retried request gets the first answer again.

A client that lost the answer to an upload (a timeout, a dropped connection) sends the same
request again with the same key and receives the answer of the first one, instead of creating
a second item. Keys are per user and kept for ``VERIFY_IDEMPOTENCY_TTL_S``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from verify.models import IdempotentRequest

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as a header value can carry it safely

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string of up to 255 visible ASCII characters. Sending the same request again with "
        "the same key returns the first answer instead of creating a second item."
    ),
)


class InvalidIdempotencyKey(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_idempotency_key"
    default_detail = "The Idempotency-Key header must be 1 to 255 visible ASCII characters."


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used for a different request."


class IdempotentRequestInProgress(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotent_request_in_progress"
    default_detail = "A request with this Idempotency-Key is still being processed; try again shortly."


def request_fingerprint(request: Request) -> str:
    """Return a SHA-256 over the method, path, form fields and uploaded files of a request."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    data = request.data
    for name in sorted(data.keys()) if hasattr(data, "keys") else []:
        values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
        for value in values:
            file_hash = getattr(value, "sha256", None)
            digest.update(f"{name}={file_hash or value!s}\n".encode())
    return digest.hexdigest()


def idempotent(view_method: Callable[..., Response]) -> Callable[..., Response]:
    """Make a POST view method honour the ``Idempotency-Key`` header.

    Contract: the first request with a key reserves it (a unique row per user and key), runs,
    and stores a successful (2xx) answer; a repeat with the same fingerprint gets that answer
    back with ``Idempotent-Replayed: true``; a repeat with different content gets 422; a repeat
    while the first still runs gets 409. An answer that is not 2xx releases the key, so a
    corrected request may use it again.
    """

    @functools.wraps(view_method)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(self, request, *args, **kwargs)
        if not _KEY.match(key):
            raise InvalidIdempotencyKey()
        fingerprint = request_fingerprint(request)
        user_id = int(request.user.pk or 0)  # the view's permission classes admit only signed-in users
        try:
            with transaction.atomic():
                record = IdempotentRequest.objects.create(user_id=user_id, key=key, fingerprint=fingerprint)
        except IntegrityError:
            return _replay(user_id, key, fingerprint)
        try:
            response = view_method(self, request, *args, **kwargs)
        except BaseException:
            record.delete()
            raise
        if not status.is_success(response.status_code):
            record.delete()
            return response
        record.status_code = response.status_code
        record.response_body = response.data
        record.response_location = response.headers.get("Location", "")
        record.save(update_fields=["status_code", "response_body", "response_location"])
        return response

    return wrapper


def _replay(user_id: int, key: str, fingerprint: str) -> Response:
    record = IdempotentRequest.objects.filter(user_id=user_id, key=key).first()
    if record is None:  # released between our insert and this read: the client may simply retry
        raise IdempotentRequestInProgress()
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if record.status_code is None:
        raise IdempotentRequestInProgress()
    headers = {"Idempotent-Replayed": "true"}
    if record.response_location:
        headers["Location"] = record.response_location
    return Response(record.response_body, status=record.status_code, headers=headers)
