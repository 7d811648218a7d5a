"""Upload handling: stream file parts to disk, hashing and sniffing them and enforcing the limits.

Every refusal happens while the body streams, before any view code runs: nothing is stored,
nothing is queued, and the temporary files written so far are removed.
"""

import hashlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest, HttpResponse
from rest_framework import status
from rest_framework.exceptions import APIException, ErrorDetail, ValidationError

from verify import sniffing


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "upload_too_large"
    default_detail = "The upload is larger than this service accepts."


class TooManyFileParts(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "too_many_files"
    default_detail = "Send one file per request."


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Write each file part to a temporary file, computing its SHA-256 as the bytes arrive.

    The whole file is never held in memory. A request whose declared or actual size passes
    ``VERIFY_MAX_UPLOAD_BYTES`` is stopped with 413; one with more than
    ``VERIFY_MAX_UPLOAD_FILE_PARTS`` files, or whose first bytes are not a container the service
    accepts (text, HTML, a playlist, random bytes), is stopped with 400. Either way the
    temporary files of the request are removed at once.
    """

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.max_bytes: int = settings.VERIFY_MAX_UPLOAD_BYTES
        self.max_files: int = settings.VERIFY_MAX_UPLOAD_FILE_PARTS
        self.received_bytes = 0
        self.digest = hashlib.sha256()
        self.head = b""
        self.sniffed = False
        self.created: list[Any] = []

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        if content_length and content_length > self.max_bytes + 64 * 1024:
            raise self._too_large()

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        if len(self.created) >= self.max_files:
            self._discard()
            raise TooManyFileParts(f"Send one file per request; this one has more than {self.max_files}.")
        super().new_file(*args, **kwargs)
        self.created.append(self.file)
        self.received_bytes = 0
        self.digest = hashlib.sha256()
        self.head = b""
        self.sniffed = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received_bytes += len(raw_data)
        if self.received_bytes > self.max_bytes:
            self._discard()
            raise self._too_large()
        if not self.sniffed:
            self.head += raw_data[: sniffing.SNIFF_BYTES - len(self.head)]
            if len(self.head) >= sniffing.SNIFF_BYTES:
                self._sniff()
        self.digest.update(raw_data)
        self.file.write(raw_data)

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if not self.sniffed and self.head:  # shorter than the sniffing window; empty files fail validation
            self._sniff()
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.digest.hexdigest()  # type: ignore[attr-defined]
            uploaded.sniffed = self.sniffed  # type: ignore[attr-defined]
        return uploaded

    def _sniff(self) -> None:
        self.sniffed = True
        found = sniffing.content_sniff(self.head)
        if not found.accepted:
            self._discard()
            message = sniffing.rejection_message(found.kind)
            raise ValidationError({"file": [ErrorDetail(message, code="unsupported_content")]})

    def _discard(self) -> None:
        for temporary in self.created:
            temporary.close()  # a NamedTemporaryFile: closing removes it

    def _too_large(self) -> UploadTooLarge:
        limit_mb = self.max_bytes / 1024**2
        return UploadTooLarge(f"The upload is larger than the limit of {limit_mb:.0f} MB.")


# verify.urls mounts the REST API here.
API_PREFIX = "/api/"


class FormLimitMiddleware:
    """Answer a desk form past Django's field limits with 413 or 400, before CSRF or a view reads it.

    Django answers such a request with 400 too, but logs it as an error with a traceback. The
    API's requests are left alone: DRF parses them with the upload handlers above, and its
    exception handler answers in the API's error shape.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and not request.path_info.startswith(API_PREFIX):
            try:
                request.POST  # noqa: B018 -- parsing is the check
            except RequestDataTooBig:
                limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024**2
                return HttpResponse(
                    f"The form is larger than the limit of {limit_mb:g} MB; shorten the text and send it again.",
                    status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                    content_type="text/plain; charset=utf-8",
                )
            except TooManyFieldsSent:
                return HttpResponse(
                    f"The form has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields.",
                    status=status.HTTP_400_BAD_REQUEST,
                    content_type="text/plain; charset=utf-8",
                )
        return self.get_response(request)
