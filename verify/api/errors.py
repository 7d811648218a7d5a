"""One error shape for every API answer: {"error": {"code", "message", "fields"?}}."""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from verify.errors import DomainError, Refused

logger = logging.getLogger(__name__)


# The HTTP status of each kind of refusal the domain raises.
REFUSAL_STATUS = {
    Refused.CONFLICT: status.HTTP_409_CONFLICT,
    Refused.NOT_PERMITTED: status.HTTP_403_FORBIDDEN,
    Refused.INVALID: status.HTTP_400_BAD_REQUEST,
}


def error_response(status_code: int, code: str, message: str, fields: Any = None, **extra: Any) -> Response:
    """Return an API error answer in the service's one error shape."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    body.update(extra)
    return Response({"error": body}, status=status_code)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Map any exception raised in an API view to the error shape; never leak a traceback."""
    if isinstance(exc, DomainError):
        return error_response(REFUSAL_STATUS[exc.kind], exc.code, exc.message, **exc.extra)
    if isinstance(exc, RequestDataTooBig):
        limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024**2
        return error_response(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            "request_too_large",
            f"The request's fields (besides the file) are larger than the limit of {limit_mb:g} MB.",
        )
    if isinstance(exc, TooManyFieldsSent):
        return error_response(
            status.HTTP_400_BAD_REQUEST,
            "too_many_fields",
            f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields; send only the API's fields.",
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return error_response(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            "server_error",
            "The server hit an unexpected error; nothing you submitted was lost. Try again later.",
        )

    if not isinstance(exc, exceptions.APIException):  # a handler answered for a non-API exception
        return response
    if isinstance(exc, exceptions.ValidationError):
        details = exc.get_full_details()
        fields: Any = details if isinstance(details, dict) else {"non_field_errors": details}
        message = "Some fields are missing or invalid."
        if set(fields) == {"non_field_errors"} and fields["non_field_errors"]:
            message = str(fields["non_field_errors"][0]["message"])
        return error_response(response.status_code, "invalid", message, fields)
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    detail = exc.detail
    message = str(detail) if not isinstance(detail, dict | list) else str(exc.default_detail)
    extra: dict[str, Any] = {}
    if isinstance(exc, exceptions.Throttled) and "Retry-After" in response:
        extra["retry_after_s"] = int(response["Retry-After"])  # the header, for clients that read only JSON
    answer = error_response(response.status_code, str(code), message, **extra)
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            answer[header] = response[header]
    return answer
