"""The client's commands and command line."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn, TextIO

from verify.client.display import ProgressDisplay, analysis_summary, error_text, print_fields, print_json
from verify.client.transport import (
    DEFAULT_URL,
    EXIT_ANALYSIS_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    ApiClient,
    ClientError,
    multipart_body,
)

POLL_INTERVAL_S = 0.5
DEFAULT_WAIT_TIMEOUT_S = 1800.0
FINISHED_STATES = ("succeeded", "failed")


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


def _case_fields(args: argparse.Namespace) -> dict[str, str]:
    optional = {
        "title": args.title,
        "claim": args.claim,
        "source_url": args.source_url,
        "claimed_location": args.claimed_location,
        "claimed_date": args.claimed_date.isoformat() if args.claimed_date else None,
        "case": str(args.case) if args.case is not None else None,
        "mode": args.mode,
    }
    return {k: v for k, v in optional.items() if v is not None}


def _submitted(api: ApiClient, args: argparse.Namespace) -> dict[str, Any]:
    """Send the file or the link; return the 202 answer, its SHA-256 checked against the file sent."""
    if (args.file is None) == (args.link is None):
        raise ClientError("give either a FILE to upload or --link URL of a post to fetch", EXIT_USAGE)
    if args.link is not None:
        return api.post_form("media/", {**_case_fields(args), "url": args.link, "refetch": str(args.refetch).lower()})
    path = Path(args.file)
    if not path.is_file():
        raise ClientError(f"{path}: no such file", EXIT_USAGE)
    body = multipart_body(_case_fields(args), "file", path)
    item = api.post_multipart("media/", body)
    local_sha256 = body.digest.hexdigest()
    if item.get("sha256") != local_sha256:
        raise ClientError(
            f"the service recorded sha256 {item.get('sha256')} for media {item.get('id')}, "
            f"but the file sent has sha256 {local_sha256}; the upload was altered in transit"
        )
    return item


def command_submit(api: ApiClient, args: argparse.Namespace) -> int:
    """Upload a file or send a link, print where to follow it and, with --wait, what its analysis found."""
    item = _submitted(api, args)
    if not args.json:
        print_fields(
            [
                ("id", str(item["id"])),
                ("case", str(item["case"])),
                ("sha256", item["sha256"] or "not yet: the service fetches the link first"),
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
                ("error", error_text(status.get("error"))),
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

    submit = commands.add_parser(
        "submit", parents=[connection, output], help="upload a file, or send a link to a post, for analysis"
    )
    submit.add_argument("file", metavar="FILE", nargs="?", help="the file to upload")
    # --url is the service's address on every command, so the post's address has a name of its own.
    submit.add_argument("--link", metavar="URL", help="instead of a file: the post or media URL the service fetches")
    submit.add_argument(
        "--refetch", action="store_true", help="with --link, fetch again even if the link was fetched before"
    )
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
