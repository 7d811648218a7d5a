"""Project-wide API views."""

from django.http import HttpRequest, JsonResponse


def server_error(request: HttpRequest) -> JsonResponse:
    """Answer an unhandled error outside the API views with the error shape, no traceback."""
    return JsonResponse(
        {"error": {"code": "server_error", "message": "The server hit an unexpected error. Try again later."}},
        status=500,
    )
