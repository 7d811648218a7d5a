"""Kill a worker's pool process mid-analysis and measure how fast the job comes back, as a user sees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from verify import ffmpeg
from verify.models import Keyframe, MediaItem
from workflows import polling, services
from workflows.api.media.serializers import analysis_status_body
from workflows.benchmark import sandbox
from workflows.benchmark.clip import ClipSpec, reference_clip_cached
from workflows.models import AuditEvent

_SANDBOX_MARK = "VERIFY_FAULT_DRILL_SANDBOX"
_WORKER_START_TIMEOUT_S = 60.0
_POLL_S = 0.05
# Settings that would point the drill at real data or at a real queue's consumers.
_STRIPPED_ENV = ("DATABASE_URL", "MEDIA_ROOT", "VERIFY_BROKER_DIR", "AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL")
# The drill's smoke clip: long enough that its keyframe pass can be caught running.
DRILL_SMOKE_CLIP = ClipSpec(size="1280x720", shots=3, shot_s=10.0, fps=25, video_bitrate="1500k")


@dataclass
class DrillResult:
    """What a script polling the status saw around the kill, in seconds after it."""

    detected_s: float | None
    running_again_s: float | None
    succeeded_s: float | None
    frozen_running_max_s: float
    interrupted_seen: bool
    final_state: str
    attempts: int
    keyframe_rows: int
    audit_interruptions: int


class Command(BaseCommand):
    help = (
        "Fault drill on the configured broker: start a worker, submit a clip, SIGKILL the worker's pool "
        "process in the keyframe stage, and print how long until the job was taken back, ran again and "
        "succeeded, and the longest time the status showed a running job that was not. Runs in a throwaway "
        "database, media root and queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--smoke", action="store_true", help="A short clip (a few seconds of analysis), for CI.")
        parser.add_argument("--timeout", type=float, default=300.0, help="Give up after this many seconds.")
        parser.add_argument("--cache-dir", type=Path, default=None, help="Where generated clips are kept.")
        parser.add_argument("--sandboxed", action="store_true", help="(internal) run the drill here.")

    def handle(
        self, *args: Any, smoke: bool, timeout: float, cache_dir: Path | None, sandboxed: bool, **o: Any
    ) -> None:
        cache_dir = (cache_dir or Path(settings.VAR_DIR) / "benchmark").resolve()
        if not sandboxed:
            self._run_sandboxed(smoke=smoke, timeout=timeout, cache_dir=cache_dir)
            return
        if os.environ.get(_SANDBOX_MARK) != str(Path(settings.VAR_DIR).resolve()):
            raise CommandError("--sandboxed is internal: the drill runs it in a throwaway environment.")
        call_command("migrate", interactive=False, verbosity=0)
        spec = DRILL_SMOKE_CLIP if smoke else ClipSpec()
        try:
            clip, _ = reference_clip_cached(spec, cache_dir=cache_dir, ffmpeg_binary=settings.FFMPEG_BINARY)
        except ffmpeg.FFmpegError as exc:
            raise CommandError(f"ffmpeg could not generate the clip: {exc.stderr_tail.strip()}") from exc
        result = drill(clip, timeout_s=timeout, log=self.stderr.write)
        self.stdout.write(drill_table(result, spec=spec, smoke=smoke))
        if result.final_state != MediaItem.State.SUCCEEDED:
            raise SystemExit(1)

    def _run_sandboxed(self, *, smoke: bool, timeout: float, cache_dir: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="verify-drill-") as root:
            env = {key: value for key, value in os.environ.items() if key not in _STRIPPED_ENV}
            queue = f"drill-{uuid.uuid4().hex[:8]}"
            env.update(
                {
                    "VERIFY_VAR_DIR": root,
                    _SANDBOX_MARK: str(Path(root).resolve()),
                    "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                    "VERIFY_ANALYSIS_QUEUE": queue,
                    "VERIFY_DEFAULT_QUEUE": f"{queue}-default",
                }
            )
            argv = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "fault_drill", "--sandboxed",
                    "--timeout", str(timeout), "--cache-dir", str(cache_dir),
                    *(["--smoke"] if smoke else [])]  # fmt: skip
            completed = subprocess.run(argv, cwd=settings.BASE_DIR, env=env, check=False)  # noqa: S603 - this command
            if completed.returncode != 0:
                raise CommandError(f"the drill failed (exit code {completed.returncode}); its output is above")


def drill(clip: Path, *, timeout_s: float, log: Any) -> DrillResult:
    """Run one drill in this process's (throwaway) database; return what the status showed."""
    worker_log = Path(settings.VAR_DIR) / "drill-worker.log"
    worker = _worker_start(worker_log)
    try:
        user, _ = sandbox.sandbox_user("drill-analyst")
        with clip.open("rb") as handle:
            upload = UploadedFile(handle, name=clip.name, content_type="video/mp4", size=clip.stat().st_size)
            item = services.case_media_submit(
                case=None, claim_fields={"title": "Fault drill", "claim": "A drill."}, upload=upload, submitted_by=user
            )
        log("drill: waiting for the keyframe stage …")
        pool_pid = _wait_keyframe_pass(item, user, deadline=time.monotonic() + timeout_s)
        os.kill(pool_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        log(f"drill: killed pool process {pool_pid}")
        return _watch(item, user, killed_at=killed_at, deadline=killed_at + timeout_s)
    finally:
        _worker_stop(worker)


def _status(item: MediaItem, user: Any) -> dict[str, Any]:
    row = polling.media_item_status_for_user(user=user, pk=item.pk)
    if row is None:
        raise CommandError("the drill's own item is not visible to its analyst")
    return analysis_status_body(row)


def _wait_keyframe_pass(item: MediaItem, user: Any, *, deadline: float) -> int:
    while time.monotonic() < deadline:
        status = _status(item, user)
        if status["state"] in ("succeeded", "failed"):
            raise CommandError(f"the analysis finished before the keyframe stage was caught: {status}")
        if status["stage"] == MediaItem.Stage.KEYFRAMES:
            owner = MediaItem.objects.values_list("lease_owner", flat=True).get(pk=item.pk)
            return int(owner.rsplit(":", 1)[-1])
        time.sleep(_POLL_S)
    raise CommandError("the keyframe stage did not start in time")


def _watch(item: MediaItem, user: Any, *, killed_at: float, deadline: float) -> DrillResult:
    detected = running_again = succeeded = None
    interrupted_seen = False
    status = _status(item, user)
    while time.monotonic() < deadline:
        status = _status(item, user)
        now = time.monotonic() - killed_at
        dead_attempt = status["state"] == "running" and status["attempts"] == 1
        if detected is None and not dead_attempt:
            detected = now
        interrupted_seen |= status["state"] == "interrupted"
        if running_again is None and status["state"] == "running" and status["attempts"] > 1:
            running_again = now
        if status["state"] in ("succeeded", "failed"):
            succeeded = now if status["state"] == "succeeded" else None
            break
        time.sleep(_POLL_S)
    return DrillResult(
        detected_s=detected,
        running_again_s=running_again,
        succeeded_s=succeeded,
        frozen_running_max_s=detected if detected is not None else time.monotonic() - killed_at,
        interrupted_seen=interrupted_seen,
        final_state=status["state"],
        attempts=status["attempts"],
        keyframe_rows=Keyframe.objects.filter(media_item=item).count(),
        audit_interruptions=AuditEvent.objects.filter(
            action=AuditEvent.Action.ANALYSIS_INTERRUPTED, object_id=str(item.pk)
        ).count(),
    )


def drill_table(result: DrillResult, *, spec: ClipSpec, smoke: bool) -> str:
    """Return the drill's findings as a Markdown table."""

    def seconds(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    broker = settings.CELERY_BROKER_URL.split("://", 1)[0]
    rows = [
        ("time to detection (status no longer shows the killed attempt running)", seconds(result.detected_s)),
        ("time to running again (attempt 2)", seconds(result.running_again_s)),
        ("time to succeeded", seconds(result.succeeded_s)),
        ("longest frozen `running` in the status", seconds(result.frozen_running_max_s)),
        ("`interrupted` seen in the status", "yes" if result.interrupted_seen else "no (shorter than a poll)"),
        ("final state, attempts", f"{result.final_state}, {result.attempts}"),
        ("keyframe rows / interruptions in the case history", f"{result.keyframe_rows} / {result.audit_interruptions}"),
    ]
    lines = [
        f"`python3 manage.py fault_drill{' --smoke' if smoke else ''}` on the {broker} broker, clip {spec.describe()}",
        "",
        "| after SIGKILL of the pool process in the keyframe stage | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]
    return "\n".join(lines)


def _worker_start(log_path: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "celery", "-A", "verify", "worker", "--concurrency", "1", "-l", "info",
            "--without-gossip", "--without-mingle", "-n", f"drill-{uuid.uuid4().hex[:6]}@%h"]  # fmt: skip
    with log_path.open("wb") as out:
        worker = subprocess.Popen(  # noqa: S603 - the Celery worker of this project
            argv, cwd=settings.BASE_DIR, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + _WORKER_START_TIMEOUT_S
    while " ready." not in log_path.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            _worker_stop(worker)
            raise CommandError(f"the worker did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    return worker


def _worker_stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
