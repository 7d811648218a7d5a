"""Command-line client for the media-verification REST API: submit footage, follow and read its analysis.

Run it as ``python -m verify.client``. It speaks only HTTP to a running service (standard library
``urllib``), so it works from any machine that can reach the API; it never imports Django.

Exit codes: 0 success, 1 the analysis failed, 2 usage or configuration error, 3 HTTP or API error,
4 timed out while waiting for the analysis.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import mimetypes
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

EXIT_OK = 0
EXIT_ANALYSIS_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_TIMEOUT = 4

DEFAULT_URL = "http://127.0.0.1:8000"
POLL_INTERVAL_S = 0.5
DEFAULT_WAIT_TIMEOUT_S = 1800.0
REQUEST_TIMEOUT_S = 120.0
UPLOAD_CHUNK_BYTES = 256 * 1024
PROGRESS_BAR_WIDTH = 30
FINISHED_STATES = ("succeeded", "failed")


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


# --- Output ----------------------------------------------------------------------------------


def print_fields(rows: list[tuple[str, str]], stream: TextIO | None = None) -> None:
    """Print label/value rows with the values lined up."""
    width = max((len(label) for label, _ in rows), default=0) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {value}", file=stream or sys.stdout)


def print_json(data: Any) -> None:
    """Print data as indented JSON."""
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _error_text(error: dict[str, Any] | None) -> str:
    return f"{error['code']}: {error['message']}" if error else "none"


def _source_note(source: str | None) -> str:
    return f" (from {source})" if source else ""


def analysis_summary(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the rows that summarise what the analysis of one media item found."""
    rows = [("state", detail["state"])]
    metadata = detail.get("metadata")
    if metadata:
        duration = metadata.get("duration_s")
        width, height = metadata.get("display_width"), metadata.get("display_height")
        created = metadata.get("creation_time")
        latitude, longitude = metadata.get("latitude"), metadata.get("longitude")
        created_text = "not recorded"
        if created:
            created_text = f"{created}{_source_note(metadata.get('creation_time_source'))}"
        location_text = "not recorded"
        if latitude is not None and longitude is not None:
            location_text = f"{latitude}, {longitude}{_source_note(metadata.get('location_source'))}"
        rows += [
            ("duration", f"{duration:.2f} s" if duration is not None else "unknown"),
            ("resolution", f"{width}x{height}" if width and height else "unknown"),
            ("video codec", metadata.get("video_codec") or "none"),
            ("creation time", created_text),
            ("location", location_text),
        ]
    if detail["state"] == "succeeded" or detail.get("keyframes"):
        truncated = " (truncated)" if detail.get("keyframes_truncated") else ""
        rows += [
            ("keyframes", f"{len(detail.get('keyframes') or [])}{truncated}"),
            ("contact sheet", detail.get("contact_sheet_url") or "none"),
        ]
    if detail.get("error"):
        rows.append(("error", _error_text(detail["error"])))
    return rows


class ProgressDisplay:
    """Show analysis progress on a stream: one redrawn line on a terminal, a line per stage elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self.last_stage: str | None = None
        self.drawn = False

    def update(self, status: dict[str, Any]) -> None:
        """Show one status answer."""
        percent = int(status.get("progress_percent") or 0)
        stage, state = status.get("stage", ""), status.get("state", "")
        if self.interactive:
            filled = PROGRESS_BAR_WIDTH * max(0, min(percent, 100)) // 100
            bar = "#" * filled + "-" * (PROGRESS_BAR_WIDTH - filled)
            self.stream.write(f"\r[{bar}] {percent:3d}%  {state}: {stage:<14}")
            self.drawn = True
        elif stage != self.last_stage:
            self.stream.write(f"{state}: {stage} ({percent}%)\n")
        self.last_stage = stage
        self.stream.flush()

    def close(self) -> None:
        """End the redrawn line so that later output starts on its own line."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


# --- Commands --------------------------------------------------------------------------------


def wait_for_analysis(api: ApiClient, item_id: int, *, timeout_s: float, stream: TextIO) -> dict[str, Any]:
    """Poll the item's status until its analysis finishes; return the last status."""
    display = ProgressDisplay(stream)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            status = api.get(f"media/{item_id}/status/")
            display.update(status)
            if status["state"] in FINISHED_STATES:
                return status
            if time.monotonic() + POLL_INTERVAL_S > deadline:
                raise ClientError(
                    f"gave up waiting after {timeout_s:g} s; media {item_id} is still {status['state']} "
                    f"({status['stage']}); check again with: status {item_id}",
                    EXIT_TIMEOUT,
                )
            time.sleep(POLL_INTERVAL_S)
    finally:
        display.close()


def command_submit(api: ApiClient, args: argparse.Namespace) -> int:
    """Upload a file, print where to follow it and, with --wait, what its analysis found."""
    path = Path(args.file)
    if not path.is_file():
        raise ClientError(f"{path}: no such file", EXIT_USAGE)
    optional = {
        "title": args.title,
        "claim": args.claim,
        "source_url": args.source_url,
        "claimed_location": args.claimed_location,
        "claimed_date": args.claimed_date.isoformat() if args.claimed_date else None,
        "case": str(args.case) if args.case is not None else None,
        "mode": args.mode,
    }
    body = multipart_body({k: v for k, v in optional.items() if v is not None}, "file", path)
    item = api.post_multipart("media/", body)
    local_sha256 = body.digest.hexdigest()
    if item.get("sha256") != local_sha256:
        raise ClientError(
            f"the service recorded sha256 {item.get('sha256')} for media {item.get('id')}, "
            f"but the file sent has sha256 {local_sha256}; the upload was altered in transit"
        )
    if not args.json:
        print_fields(
            [
                ("id", str(item["id"])),
                ("case", str(item["case"])),
                ("sha256", item["sha256"]),
                ("status url", item["status_url"]),
            ]
        )
    if not args.wait:
        if args.json:
            print_json(item)
        return EXIT_OK
    if not args.json:
        sys.stdout.flush()  # the identity lines first, even if the wait is interrupted
    status = wait_for_analysis(api, item["id"], timeout_s=args.timeout, stream=sys.stderr)
    detail = api.get(f"media/{item['id']}/")
    if args.json:
        print_json(detail)
    else:
        print()
        print_fields(analysis_summary(detail))
    return EXIT_ANALYSIS_FAILED if status["state"] == "failed" else EXIT_OK


def command_status(api: ApiClient, args: argparse.Namespace) -> int:
    """Print where an item's analysis stands."""
    status = api.get(f"media/{args.id}/status/")
    if args.json:
        print_json(status)
    else:
        print_fields(
            [
                ("state", status["state"]),
                ("stage", status["stage"]),
                ("progress", f"{status['progress_percent']}%"),
                ("error", _error_text(status.get("error"))),
            ]
        )
    return EXIT_ANALYSIS_FAILED if status["state"] == "failed" else EXIT_OK


def command_show(api: ApiClient, args: argparse.Namespace) -> int:
    """Print an item's detail: identity, metadata summary and keyframes."""
    detail = api.get(f"media/{args.id}/")
    if args.json:
        print_json(detail)
        return EXIT_OK
    print_fields(
        [
            ("id", str(detail["id"])),
            ("case", str(detail["case"])),
            ("file", detail.get("original_filename") or ""),
            ("sha256", detail["sha256"]),
            ("size", f"{detail['size_bytes']} bytes"),
            ("uploaded", f"{detail.get('uploaded_at')} by {detail.get('uploaded_by')}"),
            ("mode", detail.get("mode") or ""),
            ("stage", f"{detail['stage']} ({detail['progress_percent']}%)"),
            ("original", detail.get("original_url") or ""),
            *analysis_summary(detail),
        ]
    )
    for keyframe in detail.get("keyframes") or []:
        reasons = ",".join(keyframe.get("reasons") or [])
        print(f"  {keyframe['timestamp_s']:>9.3f} s  {reasons:<20} {keyframe['image_url']}")
    return EXIT_OK


# --- Command line ----------------------------------------------------------------------------


def _iso_date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in the form YYYY-MM-DD") from None


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for all commands."""
    connection = argparse.ArgumentParser(add_help=False)
    # SUPPRESS lets the options go before or after the command without one side resetting the other.
    connection.add_argument(
        "--url", default=argparse.SUPPRESS, help=f"service address (default: $VERIFY_URL or {DEFAULT_URL})"
    )
    connection.add_argument("--token", default=argparse.SUPPRESS, help="API token (default: $VERIFY_TOKEN)")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print the API's JSON instead of a summary")

    parser = argparse.ArgumentParser(
        prog="python -m verify.client",
        description="Submit footage to the media-verification service and read its analysis.",
        parents=[connection],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser("submit", parents=[connection, output], help="upload a file for analysis")
    submit.add_argument("file", metavar="FILE", help="the file to upload")
    submit.add_argument("--title", help="title of the new case (needed unless --case is given)")
    submit.add_argument("--claim", help="what the footage is said to show (needed unless --case is given)")
    submit.add_argument("--source-url", help="where the footage was found")
    submit.add_argument("--claimed-location", help="where the footage is said to be from")
    submit.add_argument("--claimed-date", type=_iso_date, metavar="YYYY-MM-DD", help="when it is said to be from")
    submit.add_argument("--case", type=int, metavar="ID", help="add the file to this existing case")
    submit.add_argument("--mode", choices=["full", "fast"], help="analysis mode (default: the server's)")
    submit.add_argument("--wait", action="store_true", help="wait for the analysis and print what it found")
    submit.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_WAIT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"with --wait, give up after this long (default: {DEFAULT_WAIT_TIMEOUT_S:g} s)",
    )
    submit.set_defaults(handler=command_submit)

    status = commands.add_parser("status", parents=[connection, output], help="print where an analysis stands")
    status.add_argument("id", type=int, metavar="ID")
    status.set_defaults(handler=command_status)

    show = commands.add_parser("show", parents=[connection, output], help="print a media item's detail")
    show.add_argument("id", type=int, metavar="ID")
    show.set_defaults(handler=command_show)
    return parser


def api_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> ApiClient:
    """Return an API client from the options, falling back on VERIFY_URL and VERIFY_TOKEN."""
    url = (getattr(args, "url", None) or environ.get("VERIFY_URL") or DEFAULT_URL).rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError(f"--url must be an http:// or https:// address, not {url!r}", EXIT_USAGE)
    token = getattr(args, "token", None) or environ.get("VERIFY_TOKEN")
    if not token:
        raise ClientError("no API token: pass --token TOKEN or set VERIFY_TOKEN", EXIT_USAGE)
    return ApiClient(base_url=url, token=token)


def fail(message: str, exit_code: int) -> NoReturn:
    """Print an error message on stderr and exit with exit_code."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(exit_code)


def main(argv: list[str] | None = None) -> int:
    """Run one command and return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        api = api_from_args(args, os.environ)
        return int(args.handler(api, args))
    except ClientError as error:
        fail(error.message, error.exit_code)
    except KeyboardInterrupt:
        fail("interrupted; an analysis already submitted goes on in the service", 130)


if __name__ == "__main__":
    sys.exit(main())
