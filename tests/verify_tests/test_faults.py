"""Crashes and outages: a killed worker, a restarted Redis, a broker down at upload time.

Each test runs its own stack of real processes: a redis-server on a spare port (no
persistence, so a restart loses every message), a gunicorn web process and a Celery worker,
both on the test database, with the shipped lease and reconciler settings.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from tests import media
from tests.conftest import (
    ROOT,
    WorkerProcess,
    database_url,
    make_user,
    stop_worker,
    worker_spawn,
    worker_wait_ready,
)
from tests.ports import free_port
from verify.models import Keyframe, MediaItem

pytestmark = pytest.mark.worker

# Leases, heartbeats and the reconciler keep their defaults: recovery from a lost worker takes
# seconds as shipped. Only the resending of lost queued messages is shortened.
RECOVERY_ENV = {"VERIFY_JOB_RESEND_AFTER_S": "4"}
FINISH_TIMEOUT_S = 120


class RedisServer:
    """A redis-server of our own on a spare port, without persistence."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class Stack:
    redis: RedisServer
    worker: WorkerProcess
    web: subprocess.Popen[bytes]
    url: str
    token: str

    def request(self, method: str, path: str, body: bytes = b"", content_type: str = "") -> tuple[int, Any]:
        headers = {"Authorization": f"Token {self.token}"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.url + path, data=body or None, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - our own test server
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def submit(self, path: Path) -> tuple[int, Any]:
        boundary = uuid.uuid4().hex
        fields = {"title": f"Claim {path.name}", "claim": "Shows what the post says."}
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        body += path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", "/api/v1/media/", body, f"multipart/form-data; boundary={boundary}")


def start_web(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "verify.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--timeout", "120"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/api/v1/", timeout=1)  # noqa: S310
            break
        except urllib.error.HTTPError:
            break  # 401: it answers
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text()[-2000:]}") from None
            time.sleep(0.05)
    return process, url


@pytest.fixture
def stack(analysis_worker: WorkerProcess, transactional_db: None, tmp_path: Path) -> Iterator[Stack]:
    # The session's worker shares the database, and its reconciler would take back this
    # stack's jobs (their short leases expire) and run them through its own broker. Pause it,
    # so that recovery here is this stack's doing alone.
    os.killpg(analysis_worker.process.pid, signal.SIGSTOP)
    redis = RedisServer(tmp_path)
    try:
        redis.start()
        env = {"CELERY_BROKER_URL": redis.url, **RECOVERY_ENV}
        # The worker and the web process start side by side.
        worker = worker_spawn({**env, "VERIFY_ANALYSIS_MAX_ATTEMPTS": "2"}, concurrency=1)
        web_env = {**os.environ, "DATABASE_URL": database_url(connections["default"].settings_dict), **env}
        web, url = start_web(web_env, Path(settings.VAR_DIR) / f"web-{uuid.uuid4().hex[:6]}.log")
        worker_wait_ready(worker)
        token = make_user("fault-analyst", "analyst").auth_token.key
        yield Stack(redis=redis, worker=worker, web=web, url=url, token=token)
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=20)
        stop_worker(worker, graceful=False)  # what the test needed of it is done
    finally:
        redis.stop()
        os.killpg(analysis_worker.process.pid, signal.SIGCONT)


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def item(item_id: int) -> MediaItem:
    return MediaItem.objects.get(pk=item_id)


def keyframe_pass_pid(sha256: str) -> int | None:
    """Return the pid of the ffmpeg keyframe pass reading the original with this SHA-256."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ffmpeg") and any(sha256.encode() in arg for arg in argv) and _ours(entry):
            return int(entry.name)
    return None


def _ours(process: Path) -> bool:
    """Return True if the process belongs to this test run (parallel runs may decode the same clip)."""
    try:
        environment = (process / "environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"VERIFY_VAR_DIR={os.environ['VERIFY_VAR_DIR']}".encode() in environment


def parent_pid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def kill_pool_child_during_keyframes(item_id: int) -> int:
    """SIGKILL the worker process running the item's keyframe pass; return its pid."""
    sha256 = item(item_id).sha256
    wait_until(
        lambda: item(item_id).stage == MediaItem.Stage.KEYFRAMES and keyframe_pass_pid(sha256) is not None,
        60,
        "the keyframe pass",
    )
    ffmpeg_pid = keyframe_pass_pid(sha256)
    assert ffmpeg_pid is not None
    child = parent_pid(ffmpeg_pid)
    os.kill(child, signal.SIGKILL)
    return child


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clip whose keyframe pass takes a few seconds on a small machine."""
    folder = tmp_path_factory.mktemp("faults")
    return media.shots_clip(folder / "slow.mp4", shot_s=6, size="640x360", sources=media.SHOT_SOURCES[:4])


def test_fault_worker_killed_during_keyframes_completes_exactly_once(stack: Stack, slow_clip: Path):
    # given
    status, body = stack.submit(slow_clip)
    assert status == 202, body
    item_id = body["id"]
    # when: the pool process dies mid-pass (its ffmpeg dies with it)
    killed = kill_pool_child_during_keyframes(item_id)
    # then: the job is taken back after its lease and finishes once
    wait_until(lambda: item(item_id).is_finished, FINISH_TIMEOUT_S, "the analysis to finish")
    finished = item(item_id)
    assert finished.state == MediaItem.State.SUCCEEDED, finished.error_message
    assert finished.attempts == 2
    assert stack.worker.log().count(f"media {item_id} finished: succeeded") == 1
    keyframes = list(Keyframe.objects.filter(media_item_id=item_id))
    times = [k.timestamp_s for k in keyframes]
    assert len(times) == len(set(times)) > 0
    derived = Path(settings.MEDIA_ROOT) / "derived" / str(item_id)
    assert {p.name for p in derived.iterdir()} == {Path(k.image.name).name for k in keyframes} | {"contact-sheet.jpg"}
    assert keyframe_pass_pid(finished.sha256) is None  # no orphaned decoder
    assert not Path(f"/proc/{killed}").exists()
    status, answer = stack.request("GET", f"/api/v1/media/{item_id}/status/")
    assert (status, answer["state"], answer["attempts"]) == (200, "succeeded", 2)


def test_fault_poison_file_stops_after_max_attempts_with_a_message(stack: Stack, slow_clip: Path, tmp_path: Path):
    # given: a file whose analysis kills its worker every time (two attempts allowed here)
    poison = tmp_path / "poison.mp4"
    poison.write_bytes(slow_clip.read_bytes() + b"\0")  # other bytes, same picture
    status, body = stack.submit(poison)
    assert status == 202, body
    item_id = body["id"]
    # when
    kill_pool_child_during_keyframes(item_id)
    try:
        wait_until(lambda: item(item_id).attempts == 2 and item(item_id).state == "running", 60, "the second attempt")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.worker.log()[-6000:]}\n{item(item_id).__dict__}") from None
    kill_pool_child_during_keyframes(item_id)
    # then
    wait_until(lambda: item(item_id).is_finished, 60, "the job to be given up")
    status, answer = stack.request("GET", f"/api/v1/media/{item_id}/status/")
    assert status == 200
    assert answer["state"] == "failed"
    assert answer["error"]["code"] == "analysis_abandoned"
    assert "interrupted 2 times" in answer["error"]["message"]
    assert answer["attempts"] == 2


def test_fault_redis_restart_with_jobs_queued_and_running_all_finish(stack: Stack, tmp_path: Path):
    # given: three jobs for one worker slot, so one runs and two wait in Redis
    clips = [
        media.shots_clip(tmp_path / f"clip-{i}.mp4", shot_s=3, size="480x270", sources=media.SHOT_SOURCES[i : i + 3])
        for i in range(3)
    ]
    ids = []
    for clip in clips:
        status, body = stack.submit(clip)
        assert status == 202, body
        ids.append(body["id"])
    wait_until(lambda: MediaItem.objects.filter(pk__in=ids, state="running").exists(), 60, "a running job")
    assert MediaItem.objects.filter(pk__in=ids, state="queued").count() >= 1
    # when: Redis restarts empty (no persistence): queued and unacknowledged messages are gone
    stack.redis.stop()
    time.sleep(1)
    stack.redis.start()
    # then
    wait_until(
        lambda: MediaItem.objects.filter(pk__in=ids, state__in=MediaItem.TERMINAL_STATES).count() == len(ids),
        FINISH_TIMEOUT_S,
        "every job to finish",
    )
    for item_id in ids:
        finished = item(item_id)
        assert finished.state == MediaItem.State.SUCCEEDED, finished.error_message
        assert stack.worker.log().count(f"media {item_id} finished: succeeded") == 1


def test_fault_broker_down_at_submission_answers_202_and_completes_later(stack: Stack, tmp_path: Path):
    clip = media.single_shot_clip(tmp_path / "while-down.mp4", duration_s=2)
    stack.redis.stop()
    # when
    started = time.monotonic()
    status, body = stack.submit(clip)
    elapsed_s = time.monotonic() - started
    # then: accepted at once, and kept queued
    assert status == 202, body
    assert elapsed_s < 5, f"the upload took {elapsed_s:.1f} s with the broker down"
    assert body["state"] == "queued"
    time.sleep(1)
    assert item(body["id"]).state == MediaItem.State.QUEUED
    assert item(body["id"]).enqueued_at is None
    # and: once the broker is back, the reconciler sends it
    stack.redis.start()
    wait_until(lambda: item(body["id"]).is_finished, FINISH_TIMEOUT_S, "the analysis to finish")
    assert item(body["id"]).state == MediaItem.State.SUCCEEDED
