"""Slow and idle clients must not freeze the web tier that `manage.py up` runs.

gunicorn is started with the very command line `up` builds, on a free loopback port and the test
database. Fifty connections that send nothing, ten that send half a request line and one upload
that trickles its body are held open while a browser and a polling script ask for pages.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from tests.conftest import ROOT, database_url, make_user
from tests.ports import free_port
from verify.management.commands.up import web_argv
from verify.models import MediaItem
from workflows.models import Case

START_TIMEOUT_S = 60.0  # two gunicorn workers import Django; a loaded machine takes a while
ANSWER_LIMIT_S = 1.0
IDLE_CONNECTIONS = 50
HALF_REQUEST_CONNECTIONS = 10


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, float]:
    """GET path; return the status and the seconds the answer took (a timeout counts as 599)."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except OSError:
        return 599, time.monotonic() - started
    finally:
        connection.close()


@pytest.fixture
def web_server(transactional_db: None) -> Iterator[int]:
    """Run gunicorn exactly as `manage.py up` does; yield its port."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url(connections["default"].settings_dict)}
    process = subprocess.Popen(
        web_argv(bind=f"127.0.0.1:{port}", workers=2),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while _get(port, "/admin/login/")[0] != 200:
            assert process.poll() is None, "gunicorn exited during start-up"
            assert time.monotonic() < deadline, "gunicorn did not answer in time"
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _open_slow_clients(port: int, token: str) -> tuple[list[socket.socket], threading.Event]:
    """Open idle, half-request and trickling-upload connections; return them and the trickle's stop flag."""
    sockets = []
    for _ in range(IDLE_CONNECTIONS):
        sockets.append(socket.create_connection(("127.0.0.1", port)))
    for _ in range(HALF_REQUEST_CONNECTIONS):
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"GET /admin/login/ HT")
        sockets.append(half)
    upload = socket.create_connection(("127.0.0.1", port))
    boundary = "slowclientboundary"
    upload.sendall(
        (
            "POST /api/v1/media/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {512 * 1024**2}\r\n\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()
    )
    sockets.append(upload)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.1):
            try:
                upload.sendall(b"\0" * 16)
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    return sockets, stop


@pytest.mark.timeout(60)
def test_web_tier_answers_while_slow_clients_hold_connections(web_server: int) -> None:
    # given
    analyst = make_user("poller", "analyst")
    case = Case.objects.create(title="Slow clients", claim="c", created_by=analyst)
    item = MediaItem.objects.create(case=case, original="x", size_bytes=1, sha256="ab" * 32, uploaded_by=analyst)
    auth = {"Authorization": f"Token {analyst.auth_token.key}"}
    status_path = f"/api/v1/media/{item.pk}/status/"
    assert _get(web_server, status_path, auth)[0] == 200
    sockets, stop_trickle = _open_slow_clients(web_server, analyst.auth_token.key)
    time.sleep(0.5)  # let the server accept them all

    # when
    answers: list[tuple[str, int, float]] = []
    try:
        for _ in range(3):
            answers.append(("admin login", *_get(web_server, "/admin/login/")))
            answers.append(("status poll", *_get(web_server, status_path, auth)))
    finally:
        stop_trickle.set()
        for held in sockets:
            held.close()

    # then
    print("answers under slow clients:", [(name, status, round(seconds, 3)) for name, status, seconds in answers])
    assert [(name, status) for name, status, _ in answers] == [("admin login", 200), ("status poll", 200)] * 3
    slowest: Any = max(seconds for _, _, seconds in answers)
    assert slowest < ANSWER_LIMIT_S, answers
