"""Run the command-line client as a user would, against the live API and a real Celery worker."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import fetch_server
from tests.conftest import ROOT, make_user
from tests.fetch_server import FetchServer
from tests.verify_tests.test_fetch_links import server  # noqa: F401 - the link tests' local server, a fixture

pytestmark = pytest.mark.worker

CLIENT_TIMEOUT_S = 180


# The base interpreter with -S (no site-packages at all): the client needs the standard library only.
BARE_PYTHON = [str(Path(sys.base_prefix) / "bin" / "python3"), "-S"]


def run_client(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python3 -m verify.client` on a bare Python with args; VERIFY_URL and VERIFY_TOKEN only from env."""
    base_env = {k: v for k, v in os.environ.items() if k not in ("VERIFY_URL", "VERIFY_TOKEN", "PYTHONPATH")}
    return subprocess.run(
        [*BARE_PYTHON, "-m", "verify.client", *args],
        cwd=ROOT,
        env={**base_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )


def output_fields(output: str) -> dict[str, str]:
    """Return the `label: value` lines of the client's output."""
    return dict(m.groups() for m in re.finditer(r"^([a-z0-9 ]+):\s+(.*)$", output, re.MULTILINE))


@pytest.fixture
def token(transactional_db: None) -> str:
    return make_user("cli-analyst", "analyst").auth_token.key


def test_client_submit_wait_prints_summary_then_status_and_show_agree(live_server: Any, worker, token, shots_clip):
    # when
    submitted = run_client(
        "--url", live_server.url, "--token", token,
        "submit", str(shots_clip), "--title", "Border village", "--claim", "Soldiers hiding in a village", "--wait",
    )  # fmt: skip
    # then: the summary of a successful analysis
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    fields = output_fields(submitted.stdout)
    item_id = fields["id"]
    assert fields["status url"] == f"{live_server.url}/api/v1/media/{item_id}/status/"
    assert fields["state"] == "succeeded"
    assert float(fields["duration"].removesuffix(" s")) == pytest.approx(8.0, abs=0.1)
    assert fields["resolution"] == "320x240"
    assert fields["video codec"] == "h264"
    assert fields["creation time"] == "not recorded"
    assert fields["location"] == "not recorded"
    assert fields["contact sheet"] == f"{live_server.url}/api/v1/media/{item_id}/contact-sheet/"
    assert "done" in submitted.stderr  # the last stage the progress display showed

    # and: status and show tell the same story
    status = run_client("--url", live_server.url, "--token", token, "status", item_id)
    assert status.returncode == 0, status.stderr
    assert output_fields(status.stdout)["state"] == "succeeded"

    shown = run_client("--url", live_server.url, "--token", token, "show", item_id, "--json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["sha256"] == fields["sha256"] == hashlib.sha256(shots_clip.read_bytes()).hexdigest()
    assert int(fields["keyframes"]) == len(detail["keyframes"]) > 0
    assert fields["duplicate of"] == "none" and fields["seen before"] == "no"


def test_client_names_the_earlier_case_when_the_same_bytes_come_back(live_server: Any, worker, token, shots_clip):
    first = run_client(
        "--url", live_server.url, "--token", token,
        "submit", str(shots_clip), "--title", "Border village", "--claim", "Filmed on Monday", "--wait",
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    first_fields = output_fields(first.stdout)

    # when: the same file comes back with a new caption, in a new case
    again = run_client(
        "--url", live_server.url, "--token", token,
        "submit", str(shots_clip), "--title", "Market square", "--claim", "Filmed on Friday", "--wait",
    )  # fmt: skip

    # then
    assert again.returncode == 0, again.stdout + again.stderr
    shown = re.findall(r"^(duplicate of|seen before):\s+(.*)$", again.stdout, re.MULTILINE)
    assert shown == [
        ("duplicate of", f"media {first_fields['id']} (the same bytes)"),
        ("seen before", f'case {first_fields["case"]} "Border village" (no verdict yet): media {first_fields["id"]}, '
                        "the same bytes, " + shown[1][1].split("the same bytes, ")[1]),
    ]  # fmt: skip
    assert shown[1][1].endswith("matched frames")


def test_client_submit_link_shows_fetch_progress_and_the_post(
    live_server: Any,
    worker,
    token,
    server: FetchServer,  # noqa: F811 - the fixture imported above
    shots_clip: Path,
):
    # given: a page whose video comes slowly enough for the progress display to see it
    server.routes["/media/slow.mp4"] = fetch_server.trickle(shots_clip.read_bytes(), chunks=8, pause_s=0.4)
    server.routes["/news/slow"] = fetch_server.body(
        fetch_server.og_video_page(
            server.url("/media/slow.mp4"), title="Convoy", published="2024-03-01T09:30:00+02:00"
        ),
        "text/html; charset=utf-8",
    )

    # when
    result = run_client(
        "--url", live_server.url, "--token", token,
        "submit", "--link", server.url("/news/slow"), "--title", "Convoy", "--claim", "Filmed yesterday", "--wait",
    )  # fmt: skip

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    fields = output_fields(result.stdout)
    assert fields["sha256"] == "not yet: the service fetches the link first"
    assert fields["state"] == "succeeded"
    assert fields["post"] == f"{server.url('/news/slow')} (web)"
    assert fields["author"] == "not given"  # a plain web page names no author
    assert fields["posted at"] == "2024-03-01T07:30:00Z (from page meta article:published_time)"
    size = shots_clip.stat().st_size
    assert re.search(rf"^fetched: [0-9.]+ (kB|MB|bytes) of {size / 1000:.1f} kB$", result.stderr, re.MULTILINE)
    assert server.requests["/media/slow.mp4"] == 1


def test_client_submit_unreadable_file_waits_and_exits_1_with_error_code(
    live_server: Any, worker, token, footage_dir: Path
):
    path = footage_dir / "cli-random.mp4"
    # an MP4 file-type box (so the upload is accepted) followed by noise
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + random.Random(0).randbytes(16 * 1024))

    result = run_client(
        "--url", live_server.url, "--token", token,
        "submit", str(path), "--title", "Noise", "--claim", "Not a video at all", "--wait",
    )  # fmt: skip

    assert result.returncode == 1, result.stdout + result.stderr
    fields = output_fields(result.stdout)
    assert fields["state"] == "failed"
    assert fields["error"].startswith("unreadable_media: ")
    assert "Traceback" not in result.stdout + result.stderr


def test_client_bad_token_exits_3_with_the_api_message(live_server: Any, token, shots_clip):
    result = run_client(
        "--url", live_server.url, "--token", "not-a-token",
        "submit", str(shots_clip), "--title", "T", "--claim", "C",
    )  # fmt: skip

    assert result.returncode == 3
    assert "authentication_failed: Invalid token." in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_client_submit_without_a_claim_exits_3_listing_the_fields(live_server: Any, token, shots_clip):
    result = run_client("--url", live_server.url, "--token", token, "submit", str(shots_clip), "--title", "T")

    assert result.returncode == 3
    assert "invalid: Some fields are missing or invalid." in result.stderr
    assert "claim: Required to open a new case when no case is given." in result.stderr


def test_client_missing_token_exits_2():
    result = run_client("--url", "http://127.0.0.1:9", "status", "1")

    assert result.returncode == 2
    assert "VERIFY_TOKEN" in result.stderr


def test_client_closed_port_exits_3_without_traceback():
    # given: a port nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = run_client("--url", f"http://127.0.0.1:{port}", "--token", "any", "status", "1")

    assert result.returncode == 3
    assert "connection refused" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stdout + result.stderr
