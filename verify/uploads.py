"""Upload handling: stream file parts to disk, hashing them and enforcing the size limit."""

import hashlib
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from rest_framework import status
from rest_framework.exceptions import APIException


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "upload_too_large"
    default_detail = "The upload is larger than this service accepts."


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Write each file part to a temporary file, computing its SHA-256 as the bytes arrive.

    The whole file is never held in memory. A request whose declared or actual size passes
    ``VERIFY_MAX_UPLOAD_BYTES`` is stopped with 413 and its temporary file removed.
    """

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.max_bytes: int = settings.VERIFY_MAX_UPLOAD_BYTES
        self.received_bytes = 0
        self.digest = hashlib.sha256()

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        if content_length and content_length > self.max_bytes + 64 * 1024:
            raise self._too_large()

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received_bytes = 0
        self.digest = hashlib.sha256()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received_bytes += len(raw_data)
        if self.received_bytes > self.max_bytes:
            self.file.close()  # a NamedTemporaryFile: closing removes it
            raise self._too_large()
        self.digest.update(raw_data)
        self.file.write(raw_data)

    def file_complete(self, file_size: int) -> UploadedFile | None:
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.digest.hexdigest()  # type: ignore[attr-defined]
        return uploaded

    def _too_large(self) -> UploadTooLarge:
        limit_mb = self.max_bytes / 1024**2
        return UploadTooLarge(f"The upload is larger than the limit of {limit_mb:.0f} MB.")
