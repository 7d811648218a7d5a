"""HTTP for the client: streaming multipart uploads and JSON answers, errors in one line."""

from __future__ import annotations

import hashlib
import http.client
import json
import mimetypes
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_ANALYSIS_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_TIMEOUT = 4

DEFAULT_URL = "http://127.0.0.1:8000"
REQUEST_TIMEOUT_S = 120.0
UPLOAD_CHUNK_BYTES = 256 * 1024


class ClientError(Exception):
    """A problem to report to the user in one line, and the exit code to leave with."""

    def __init__(self, message: str, exit_code: int = EXIT_API) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# --- HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MultipartBody:
    """A multipart/form-data body produced piece by piece, with its length known up front."""

    boundary: str
    preamble: bytes
    file_path: Path
    file_size_bytes: int
    epilogue: bytes
    digest: Any = field(default_factory=hashlib.sha256, compare=False)

    @property
    def content_type(self) -> str:
        """Return the Content-Type header value, boundary included."""
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int:
        """Return the exact number of bytes the body will produce."""
        return len(self.preamble) + self.file_size_bytes + len(self.epilogue)

    def chunks(self) -> Iterator[bytes]:
        """Yield the body; the file is read from disk in chunks and hashed as it goes."""
        yield self.preamble
        sent = 0
        with self.file_path.open("rb") as handle:
            while chunk := handle.read(UPLOAD_CHUNK_BYTES):
                sent += len(chunk)
                if sent > self.file_size_bytes:
                    break
                self.digest.update(chunk)
                yield chunk
        # The Content-Length was promised before the first byte went out.
        if sent != self.file_size_bytes:
            raise ClientError(f"{self.file_path} changed size while it was being uploaded; try again.")
        yield self.epilogue


def _quote_header_value(value: str) -> str:
    # Browsers escape these three characters in multipart names the same way (HTML spec).
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_body(fields: dict[str, str], file_field: str, file_path: Path) -> MultipartBody:
    """Return a streaming multipart body with the text fields first and the file last."""
    boundary = f"verify-client-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote_header_value(name)}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    content_type = mimetypes.guess_type(file_path.name)[0] or "application/octet-stream"
    parts.append(
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{_quote_header_value(file_field)}"; '
            f'filename="{_quote_header_value(file_path.name)}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
    )
    return MultipartBody(
        boundary=boundary,
        preamble=b"".join(parts),
        file_path=file_path,
        file_size_bytes=file_path.stat().st_size,
        epilogue=f"\r\n--{boundary}--\r\n".encode(),
    )


def _describe_api_error(status: int, body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        text = body.decode(errors="replace").strip().splitlines()
        detail = f": {text[0][:200]}" if text and not text[0].lstrip().startswith("<") else ""
        return f"the API answered HTTP {status}{detail}"
    lines = [f"the API answered HTTP {status}: {code}: {message}"]
    fields = error.get("fields")
    if isinstance(fields, dict):
        for name, problems in fields.items():
            for problem in problems if isinstance(problems, list) else [problems]:
                text = problem.get("message", problem) if isinstance(problem, dict) else problem
                lines.append(f"  {name}: {text}")
    return "\n".join(lines)


def _describe_connection_error(url: str, reason: object) -> str:
    where = urllib.parse.urlsplit(url).netloc or url
    if isinstance(reason, ConnectionRefusedError):
        return f"cannot connect to {where}: connection refused (is the service running? check --url)"
    if isinstance(reason, TimeoutError):
        return f"no answer from {where} within {REQUEST_TIMEOUT_S:.0f} s"
    return f"cannot reach {where}: {reason}"


@dataclass(frozen=True)
class ApiClient:
    """Talk JSON to the service's /api/v1/ with token authentication."""

    base_url: str
    token: str

    def url(self, path: str) -> str:
        """Return the absolute URL of an API path."""
        return f"{self.base_url}/api/v1/{path.lstrip('/')}"

    def get(self, path: str) -> dict[str, Any]:
        """GET an API path and return its JSON body."""
        request = urllib.request.Request(self.url(path), headers=self._headers())  # noqa: S310 - scheme checked
        return self._send(request)

    def post_multipart(self, path: str, body: MultipartBody) -> dict[str, Any]:
        """POST a streaming multipart body to an API path and return its JSON body."""
        headers = {**self._headers(), "Content-Type": body.content_type, "Content-Length": str(body.content_length)}
        request = urllib.request.Request(  # noqa: S310 - scheme checked in config_from_args
            self.url(path), data=body.chunks(), headers=headers, method="POST"
        )
        return self._send(request)

    def post_form(self, path: str, fields: dict[str, str]) -> dict[str, Any]:
        """POST form fields (application/x-www-form-urlencoded) to an API path and return its JSON body."""
        data = urllib.parse.urlencode(fields).encode()
        headers = {**self._headers(), "Content-Type": "application/x-www-form-urlencoded"}
        request = urllib.request.Request(  # noqa: S310 - scheme checked in config_from_args
            self.url(path), data=data, headers=headers, method="POST"
        )
        return self._send(request)

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Token {self.token}",
            "Accept": "application/json",
            "User-Agent": "verify-client/1",
        }

    def _send(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as error:
            with error:
                raise ClientError(_describe_api_error(error.code, error.read())) from None
        except urllib.error.URLError as error:
            raise ClientError(_describe_connection_error(request.full_url, error.reason)) from None
        except (OSError, http.client.HTTPException) as error:
            raise ClientError(_describe_connection_error(request.full_url, error)) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise ClientError(f"the API at {request.full_url} did not answer with JSON") from None
        if not isinstance(answer, dict):
            raise ClientError(f"the API at {request.full_url} answered with unexpected JSON")
        return answer
