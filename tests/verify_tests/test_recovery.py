"""Recovery of interrupted analyses on the configured broker, with the shipped lease settings.

Real workers, real ffmpeg: a pool process killed in the keyframe stage, a worker's main process
killed, a worker told to stop mid-analysis, and a healthy analysis starved of CPU. Each test
polls the status endpoint the way a script does and checks what it showed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from tests import media
from tests.conftest import ROOT, WorkerProcess, stop_worker, submit, worker_spawn, worker_wait_ready
from tests.verify_tests.test_faults import item, keyframe_pass_pid, parent_pid, wait_until
from verify.models import Keyframe, MediaItem
from workflows.models import AuditEvent

pytestmark = pytest.mark.worker

# The bound: a job resumes within 30 s of losing its worker.
RECOVERY_BOUND_S = 30.0
FINISH_TIMEOUT_S = 90.0


@dataclass
class StatusLog:
    """Every distinct status answer a polling script saw, with when it first saw it."""

    seen: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def states(self) -> list[str]:
        return [status["state"] for _, status in self.seen]

    def first(self, predicate: Any) -> float | None:
        return next((at for at, status in self.seen if predicate(status)), None)

    def longest_unchanged_running_s(self, after: float) -> float:
        """Return the longest time the status showed one and the same running answer, after ``after``."""
        longest = 0.0
        for (at, status), (next_at, _) in zip(self.seen, [*self.seen[1:], (time.monotonic(), {})], strict=True):
            if status["state"] == "running" and next_at > after:
                longest = max(longest, next_at - max(at, after))
        return longest


@pytest.fixture
def polling(api: Any) -> Iterator[Any]:
    """Start polling an item's status in a thread, as a script would; stop at the end of the test."""
    logs: list[StatusLog] = []

    def start(item_id: int) -> StatusLog:
        log = StatusLog()

        def poll() -> None:
            try:
                while not log.stop.is_set():
                    status = api.get(f"/api/v1/media/{item_id}/status/").json()
                    if not log.seen or {**status, "updated_at": None} != {**log.seen[-1][1], "updated_at": None}:
                        log.seen.append((time.monotonic(), status))
                    if status["state"] in ("succeeded", "failed"):
                        return
                    time.sleep(0.05)
            finally:
                connections.close_all()

        threading.Thread(target=poll, daemon=True).start()
        logs.append(log)
        return log

    yield start
    for log in logs:
        log.stop.set()


@pytest.fixture
def paused_session_worker(analysis_worker: WorkerProcess, transactional_db: None) -> Iterator[None]:
    """Pause the session's worker, so that the workers each test starts are the only ones."""
    os.killpg(analysis_worker.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(analysis_worker.process.pid, signal.SIGCONT)


@pytest.fixture
def workers() -> Iterator[Any]:
    """Start ``count`` workers side by side (one pool process each); stop them at the end."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str] | None = None, *, count: int = 1) -> list[WorkerProcess]:
        spawned = [worker_spawn(env, concurrency=1) for _ in range(count)]
        started.extend(spawned)
        return [worker_wait_ready(worker) for worker in spawned]

    yield start
    for worker in started:
        if worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGKILL)  # orphaned pool processes too
            worker.process.wait()
        else:
            stop_worker(worker)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clip whose keyframe pass runs for several seconds: a minute of 720p at 4 Mb/s.

    Generators that are cheap to draw, and x264's fastest preset: a third of the time to make,
    as slow to decode as the same minute encoded slower at a lower bitrate.
    """
    folder = tmp_path_factory.mktemp("recovery")
    return media.shots_clip(
        folder / "long.mp4", shot_s=15, size="1280x720", sources=media.SHOT_SOURCES[::2], preset="ultrafast",
        bitrate="4M",
    )  # fmt: skip


def _keyframe_pool_pid(item_id: int, *workers: WorkerProcess) -> int:
    sha256 = item(item_id).sha256
    try:
        wait_until(
            lambda: item(item_id).stage == MediaItem.Stage.KEYFRAMES and keyframe_pass_pid(sha256) is not None,
            60,
            "the keyframe pass",
        )
    except AssertionError as exc:
        logs = "\n".join(worker.log()[-3000:] for worker in workers)
        raise AssertionError(f"{exc}: {item(item_id).__dict__}\n{logs}") from None
    ffmpeg_pid = keyframe_pass_pid(sha256)
    assert ffmpeg_pid is not None
    return parent_pid(ffmpeg_pid)


def _finished_once(item_id: int, *workers: WorkerProcess) -> MediaItem:
    wait_until(lambda: item(item_id).is_finished, FINISH_TIMEOUT_S, "the analysis to finish")
    finished = item(item_id)
    assert finished.state == MediaItem.State.SUCCEEDED, "\n".join(worker.log()[-4000:] for worker in workers)
    time.sleep(0.5)  # the worker's log line follows the commit
    assert sum(worker.log().count(f"media {item_id} finished: succeeded") for worker in workers) == 1
    times = list(Keyframe.objects.filter(media_item_id=item_id).values_list("timestamp_s", flat=True))
    assert len(times) == len(set(times)) > 0
    return finished


def _interruptions(item_id: int) -> list[dict[str, Any]]:
    events = AuditEvent.objects.filter(action=AuditEvent.Action.ANALYSIS_INTERRUPTED, object_id=str(item_id))
    return [event.after for event in events]


def test_recovery_pool_process_killed_shows_interrupted_and_succeeds_within_30s(
    paused_session_worker, workers, api, polling, long_clip
):
    # given
    [worker] = workers()
    item_id = submit(api, long_clip).json()["id"]
    status_log = polling(item_id)
    pool_pid = _keyframe_pool_pid(item_id, worker)
    # when: the pool process dies as under the OOM killer
    os.kill(pool_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    # then
    finished = _finished_once(item_id, worker)
    assert finished.attempts == 2
    resumed_at = status_log.first(lambda s: s["state"] == "running" and s["attempts"] == 2)
    assert resumed_at is not None and resumed_at - killed_at < RECOVERY_BOUND_S
    # Celery puts the message back at once, so a new pool process can claim the job within a
    # tenth of a second of it reading `interrupted`: a poll may or may not land in between. What
    # every poll shows is the second attempt; the case's history names the interruption.
    interrupted = [s for _, s in status_log.seen if s["state"] == "interrupted"]
    assert all(s["detail"] == "interrupted: the worker was lost; retrying (attempt 2 of 3)" for s in interrupted)
    assert status_log.seen[-1][1]["attempts"] == 2
    assert status_log.longest_unchanged_running_s(after=killed_at) < RECOVERY_BOUND_S
    [event] = _interruptions(item_id)
    assert event["retrying"] is True and "stopped" in event["reason"]


def test_recovery_worker_main_process_killed_the_job_finishes_once(
    paused_session_worker, workers, api, polling, long_clip, tmp_path
):
    # given: two workers; the job runs on one of them
    first, second = workers(count=2)
    clip = tmp_path / "main-killed.mp4"
    clip.write_bytes(long_clip.read_bytes() + b"\0")  # other bytes, same picture
    item_id = submit(api, clip).json()["id"]
    status_log = polling(item_id)
    pool_pid = _keyframe_pool_pid(item_id, first, second)
    owner = first if parent_pid(pool_pid) == first.process.pid else second
    # when: the worker's main process dies; its pool process is orphaned
    os.kill(owner.process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    # then: the job finishes exactly once, and the status never freezes on a running answer
    _finished_once(item_id, first, second)
    assert status_log.longest_unchanged_running_s(after=killed_at) < RECOVERY_BOUND_S
    assert status_log.seen[-1][0] - killed_at < FINISH_TIMEOUT_S


def test_recovery_worker_told_to_stop_hands_the_job_to_the_other_worker(
    paused_session_worker, workers, api, polling, long_clip, tmp_path
):
    # given: two workers with a short stop grace; the job runs on one of them
    env = {"VERIFY_WORKER_STOP_GRACE_S": "0.5"}
    first, second = workers(env, count=2)
    clip = tmp_path / "deploy.mp4"
    clip.write_bytes(long_clip.read_bytes() + b"\0\0")
    item_id = submit(api, clip).json()["id"]
    status_log = polling(item_id)
    pool_pid = _keyframe_pool_pid(item_id, first, second)
    stopped, other = (first, second) if parent_pid(pool_pid) == first.process.pid else (second, first)
    # when: a deploy stops that worker (SIGTERM to its main process, as compose and systemd do)
    os.kill(stopped.process.pid, signal.SIGTERM)
    signalled_at = time.monotonic()
    # then: the stopping worker exits soon after its grace, and the other one runs the job
    stopped.process.wait(timeout=RECOVERY_BOUND_S)
    assert f"handed back media {item_id}" in stopped.log(), stopped.log()[-5000:]
    resumed_at = status_log.first(lambda s: s["state"] == "running" and s["attempts"] == 2)
    assert resumed_at is not None and resumed_at - signalled_at < RECOVERY_BOUND_S
    finished = _finished_once(item_id, stopped, other)
    assert f"media {item_id} finished: succeeded" in other.log(), stopped.log()[-6000:]
    assert finished.attempts == 2
    assert "interrupted" in status_log.states()
    [event] = _interruptions(item_id)
    assert event["reason"] == "The worker running the analysis was shut down."


def test_recovery_slow_healthy_analysis_starved_of_cpu_is_not_taken_over(
    paused_session_worker, workers, api, polling, long_clip, tmp_path
):
    # given: a very short lease (0.6 s, a heartbeat every 0.15 s), reconcilers looking for expired
    # leases four times a second, and workers starved by busy processes
    lease_s = 0.6
    env = {"VERIFY_JOB_LEASE_S": str(lease_s), "VERIFY_JOB_HEARTBEAT_S": "0.15", "VERIFY_RECONCILE_INTERVAL_S": "0.25"}
    first, second = workers(env, count=2)
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], cwd=ROOT)  # noqa: S603
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        for worker in (first, second):
            _deprioritise(worker.process.pid)
        clip = tmp_path / "starved.mp4"
        clip.write_bytes(long_clip.read_bytes() + b"\0\0\0")
        started = time.monotonic()
        item_id = submit(api, clip).json()["id"]
        status_log = polling(item_id)
        # then
        finished = _finished_once(item_id, first, second)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    took_s = time.monotonic() - started
    assert took_s > 4 * lease_s, f"the analysis took {took_s:.1f} s: not slow enough to outlast the lease"
    assert finished.attempts == 1
    assert "interrupted" not in status_log.states()
    assert _interruptions(item_id) == []


def _deprioritise(session_leader: int) -> None:
    """Give a worker's processes a low share of the CPU against the busy processes.

    With the kernel's autogroup scheduling a session competes as one group, whatever the nice
    value of its processes: the worker's session is niced as a group where the kernel allows it.
    """
    for pid in [session_leader, *_children(session_leader)]:
        os.setpriority(os.PRIO_PROCESS, pid, 10)
    try:
        Path(f"/proc/{session_leader}/autogroup").write_text("5")
    except OSError:
        pass  # no autogroup scheduling here (or not ours to change): the nice values above count


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if parent_pid(int(entry.name)) == pid:
                    found.append(int(entry.name))
            except (OSError, StopIteration):
                continue
    return found


@pytest.mark.slow
def test_fault_drill_smoke_prints_the_recovery_table():
    # when
    completed = subprocess.run(
        [sys.executable, "manage.py", "fault_drill", "--smoke", "--timeout", "120"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    # then
    assert completed.returncode == 0, completed.stdout + completed.stderr[-3000:]
    cells = [line.strip("|").split("|") for line in completed.stdout.splitlines() if line.startswith("| ")]
    rows = {name.strip(): value.strip() for name, value in cells}
    assert rows["time to succeeded"] != "never", completed.stdout
    assert float(rows["time to succeeded"].split()[0]) < RECOVERY_BOUND_S
    assert rows["final state, attempts"] == "succeeded, 2"
    # the job is claimed again within a poll or two of being interrupted: seen, or said not to be
    assert rows["`interrupted` seen in the status"] in ("yes", "no (shorter than a poll)")


@pytest.mark.slow  # runs `manage.py up`; CI runs it on PostgreSQL + Redis
def test_up_restarts_a_worker_that_died_and_says_so(tmp_path: Path):
    # given: `manage.py up` on its own var/, serving
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "VERIFY_BROKER_DIR", "DJANGO_SECRET_KEY"}
    }
    env["VERIFY_VAR_DIR"] = str(tmp_path / "var")
    log_path = tmp_path / "up.log"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--bind", f"127.0.0.1:{port}", "--web-workers", "1",
             "--concurrency", "1"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    output = lambda: log_path.read_text(errors="replace")  # noqa: E731
    try:
        wait_until(lambda: "Press Ctrl-C to stop." in output() or up.poll() is not None, 120, "the banner")
        assert up.poll() is None, output()[-3000:]
        worker_pid = next(pid for pid in _children(up.pid) if b"celery" in Path(f"/proc/{pid}/cmdline").read_bytes())
        # when: the worker's main process dies
        os.kill(worker_pid, signal.SIGKILL)
        # then: up says so, starts a new worker, and keeps serving
        wait_until(lambda: output().count(" ready.") >= 2 or up.poll() is not None, 60, "the worker to restart")
        assert up.poll() is None, output()[-3000:]
        assert "The worker process stopped unexpectedly (exit code -9); restarting it in 1 s." in output()
        assert "The worker process was restarted." in output()
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=40) == 0
    finally:
        try:
            os.killpg(up.pid, signal.SIGKILL)  # whatever is left of its process group
        except ProcessLookupError:
            pass
        up.wait()
