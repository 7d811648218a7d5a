"""End-to-end benchmark: an upload over HTTP to the status poll that reads ``succeeded``, as a script sees it.

The analysis benchmark times ``analysis_run`` alone. A script that submits footage waits for
more: the upload, the message's trip through the broker until a worker claims the job, the
analysis, and the poll that notices the result. This mode runs the service as ``up`` runs it
(gunicorn with gevent workers, one Celery worker with the same command line), once on the
embedded filesystem broker and once on Redis, each with its own broker, queues and processes
but the sandbox's one database. Every round uploads the reference clip to each service in
turn, each next to a plain decode of the same file, so a slow phase of a shared machine falls
on both sides of a ratio alike.

Where the time goes comes from the job's own timestamps (``started_at`` when a worker claims
it, ``finished_at`` when the result is committed) and from the stage each poll saw.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from verify.management.commands.up import web_argv, worker_argv
from verify.models import MediaItem
from workflows.benchmark.analysis import full_decode_round
from workflows.benchmark.report import Check, Report, Timing
from workflows.benchmark.sandbox import sandbox_user
from workflows.benchmark.web import _accepts, _free_port, child_pids, upload_stream

E2E_RATIO_LIMIT = 1.2
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
# A script's progress loop: poll, wait this long after each answer, poll again.
POLL_INTERVAL_S = 0.2
IDLE_WINDOW_S = 10.0
SMOKE_IDLE_WINDOW_S = 2.0
WEB_WORKERS = 2
WORKER_CONCURRENCY = 2
_START_TIMEOUT_S = 120.0
_ROUND_TIMEOUT_S = 3600.0
_STOP_GRACE_S = 30.0
_STAGES = ("probe", "keyframes", "hashes", "contact_sheet")


@dataclass(frozen=True)
class Setup:
    """One way of running the service: a name for the table and the environment that makes it."""

    name: str
    env: dict[str, str]


@dataclass(frozen=True)
class Service:
    """A running web tier and worker of one setup."""

    setup: Setup
    port: int
    web: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    web_log: Path
    worker_log: Path


@dataclass
class E2ERound:
    """One upload-to-succeeded, split where the job's timestamps and the polls allow."""

    total_s: float
    upload_s: float
    queue_s: float
    analysis_s: float
    poll_lag_s: float
    polls: int
    cpu_s: float
    web_cpu_s: float
    stages_s: dict[str, float] = field(default_factory=dict)


def _wait_for(predicate: Callable[[], bool], *, what: str, log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not predicate():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start; its log ends:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def service_start(setup: Setup, *, workdir: Path) -> Service:
    """Start gunicorn and a Celery worker with ``up``'s command lines in the setup's environment."""
    env = {**os.environ, **setup.env}
    port = _free_port()
    slug = setup.name.split(",")[0].replace(" ", "-") + f"-{port}"
    web_log, worker_log = workdir / f"e2e-{slug}-web.log", workdir / f"e2e-{slug}-worker.log"
    with web_log.open("ab") as log:
        web = subprocess.Popen(  # noqa: S603 - up's own command line
            web_argv(bind=f"127.0.0.1:{port}", workers=WEB_WORKERS),
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    with worker_log.open("ab") as log:
        worker = subprocess.Popen(  # noqa: S603 - up's own command line
            worker_argv(concurrency=WORKER_CONCURRENCY),
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Service(setup=setup, port=port, web=web, worker=worker, web_log=web_log, worker_log=worker_log)


def service_wait_ready(service: Service) -> None:
    """Wait until gunicorn accepts connections and the worker says it is ready."""
    _wait_for(lambda: _accepts(service.port), what="gunicorn", log=service.web_log, process=service.web)
    _wait_for(
        lambda: b" ready." in service.worker_log.read_bytes(),
        what="the worker", log=service.worker_log, process=service.worker,
    )  # fmt: skip


def service_stop(service: Service) -> None:
    """Stop the worker, then the web tier (SIGTERM, then SIGKILL after the grace period)."""
    _stop(service.worker)
    _stop(service.web)


def redis_answers(url: str) -> str:
    """Return "" when Redis at url answers a PING, else why not."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return ""


def redis_queues_delete(url: str, queues: list[str]) -> None:
    """Remove the run's own queues and their bindings from Redis; nothing else on the server is touched."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    for queue in queues:
        client.delete(queue, f"_kombu.binding.{queue}")


def _status(port: int, token: str, item_id: int) -> dict[str, str]:
    # A new connection per poll, as urllib.request.urlopen in a script's loop makes.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", f"/api/v1/media/{item_id}/status/", headers={"Authorization": f"Token {token}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"the status poll answered {response.status}: {body[:500]!r}")
        return dict(json.loads(body))
    finally:
        conn.close()


def e2e_round(service: Service, *, token: str, clip: Path) -> E2ERound:
    """Upload the clip over HTTP and poll its status every POLL_INTERVAL_S until it finishes."""
    web_before, worker_before = service_cpu_s(service)
    started_epoch, started = time.time(), time.perf_counter()
    result = upload_stream(service.port, token, clip, size_bytes=clip.stat().st_size)
    upload_s = time.perf_counter() - started
    if result.status != 202:
        raise RuntimeError(f"the upload answered {result.status}: {result.body}")
    item_id = int(result.body["id"])
    first_seen: dict[str, float] = {}
    polls = 0
    while True:
        status = _status(service.port, token, item_id)
        polls += 1
        now = time.perf_counter() - started
        first_seen.setdefault(str(status["stage"]), now)
        if status["state"] in MediaItem.TERMINAL_STATES:
            break
        if now > _ROUND_TIMEOUT_S:
            raise RuntimeError(f"media {item_id} did not finish within {_ROUND_TIMEOUT_S:g} s: {status}")
        time.sleep(POLL_INTERVAL_S)
    total_s = time.perf_counter() - started
    web_after, worker_after = service_cpu_s(service)
    item = MediaItem.objects.get(pk=item_id)
    if item.state != MediaItem.State.SUCCEEDED or item.started_at is None or item.finished_at is None:
        raise RuntimeError(f"media {item_id} ended {item.state}: {item.error_code} {item.error_message}")
    claimed_s = item.started_at.timestamp() - started_epoch
    finished_s = item.finished_at.timestamp() - started_epoch
    # The claim sets the first stage; the polls see when each later one began.
    seen = [("probe", claimed_s)] + [(stage, first_seen[stage]) for stage in _STAGES[1:] if stage in first_seen]
    seen.append(("done", finished_s))
    stages_s = {stage: max(later - at, 0.0) for (stage, at), (_, later) in zip(seen, seen[1:], strict=False)}
    return E2ERound(
        total_s=total_s,
        upload_s=upload_s,
        queue_s=max(claimed_s - upload_s, 0.0),
        analysis_s=finished_s - claimed_s,
        poll_lag_s=max(total_s - finished_s, 0.0),
        polls=polls,
        cpu_s=web_after + worker_after - web_before - worker_before,
        web_cpu_s=web_after - web_before,
        stages_s=stages_s,
    )


def _cpu_ticks(pid: int, *, waited_children: bool = False) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # utime + stime, and cutime + cstime: the ffprobe/ffmpeg runs the process has waited for.
    return sum(int(value) for value in fields[11 : 15 if waited_children else 13])


def service_cpu_s(service: Service) -> tuple[float, float]:
    """Return the CPU seconds the web tier and the worker (with the ffmpeg runs they waited for) have used."""

    def tree_s(pid: int) -> float:
        ticks = sum(_cpu_ticks(each, waited_children=True) for each in (pid, *child_pids(pid)))
        return ticks / os.sysconf("SC_CLK_TCK")

    return tree_s(service.web.pid), tree_s(service.worker.pid)


def idle_cpu_percent(process: subprocess.Popen[bytes], *, window_s: float) -> float:
    """Return the CPU the worker's process tree (main process and pool children) uses while idle, % of one core."""
    pids = [process.pid, *child_pids(process.pid)]
    before = sum(_cpu_ticks(pid) for pid in pids)
    time.sleep(window_s)
    used = sum(_cpu_ticks(pid) for pid in pids) - before
    return 100.0 * used / os.sysconf("SC_CLK_TCK") / window_s


def setups(*, workdir: Path, redis_url: str, compare_poll_interval_s: float | None) -> tuple[list[Setup], list[str]]:
    """Return the setups to measure and a note for each one left out."""
    run = uuid.uuid4().hex[:8]
    interval = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("polling_interval", 1.0)

    def filesystem(name: str, poll_s: float | None) -> Setup:
        folder = workdir / f"broker-{'default' if poll_s is None else 'compared'}"
        env = {"CELERY_BROKER_URL": "filesystem://", "VERIFY_BROKER_DIR": str(folder)}
        if poll_s is not None:
            env["VERIFY_BROKER_POLL_INTERVAL_S"] = f"{poll_s:g}"
        return Setup(name, env)

    chosen = [filesystem(f"embedded broker, polling every {interval:g} s", None)]
    if compare_poll_interval_s is not None:
        chosen.append(
            filesystem(f"embedded broker, polling every {compare_poll_interval_s:g} s", compare_poll_interval_s)
        )
    skipped = []
    problem = redis_answers(redis_url)
    if problem:
        skipped.append(f"Redis row skipped: {redis_url} does not answer ({problem})")
    else:
        chosen.append(
            Setup(
                "Redis",
                {
                    "CELERY_BROKER_URL": redis_url,
                    "VERIFY_ANALYSIS_QUEUE": f"benchmark-e2e-{run}-analysis",
                    "VERIFY_DEFAULT_QUEUE": f"benchmark-e2e-{run}-default",
                },
            )
        )
    return chosen, skipped


def e2e_benchmark(
    clip: Path, *, warm_up_clip: Path, workdir: Path, rounds: int, redis_url: str,
    compare_poll_interval_s: float | None, enforce_timing: bool,
) -> Report:  # fmt: skip
    """Time upload-to-succeeded on each setup against a plain decode of the same clip, interleaved."""
    _, token = sandbox_user("benchmark-e2e")
    chosen, skipped = setups(workdir=workdir, redis_url=redis_url, compare_poll_interval_s=compare_poll_interval_s)
    results: dict[str, list[E2ERound]] = {setup.name: [] for setup in chosen}
    decodes: dict[str, list[tuple[float, float]]] = {setup.name: [] for setup in chosen}
    idle: dict[str, float] = {}
    try:
        with ExitStack() as stack:
            services = []
            for setup in chosen:  # all start at once: each takes seconds to import Django
                services.append(service_start(setup, workdir=workdir))
                stack.callback(service_stop, services[-1])
            for service in services:
                service_wait_ready(service)
            for service in services:  # the first analyses in new processes pay one-off imports
                for _ in range(2 if enforce_timing else 1):
                    e2e_round(service, token=token, clip=warm_up_clip)
            window_s = IDLE_WINDOW_S if enforce_timing else SMOKE_IDLE_WINDOW_S
            for service in services:
                idle[service.setup.name] = idle_cpu_percent(service.worker, window_s=window_s)
            for round_index in range(rounds):
                shift = round_index % len(services)
                for service in services[shift:] + services[:shift]:
                    name = service.setup.name
                    steps = [
                        lambda s=service: results[s.setup.name].append(e2e_round(s, token=token, clip=clip)),
                        lambda n=name: decodes[n].append(full_decode_round(clip)),
                    ]
                    for step in steps if round_index % 2 == 0 else steps[::-1]:
                        step()
    finally:
        redis_setups = [setup for setup in chosen if setup.name == "Redis"]
        for setup in redis_setups:
            redis_queues_delete(redis_url, [setup.env["VERIFY_ANALYSIS_QUEUE"], setup.env["VERIFY_DEFAULT_QUEUE"]])
    return _report(clip, results=results, decodes=decodes, idle=idle, skipped=skipped, rounds=rounds,
                   enforce_timing=enforce_timing)  # fmt: skip


def _report(
    clip: Path, *, results: dict[str, list[E2ERound]], decodes: dict[str, list[tuple[float, float]]],
    idle: dict[str, float], skipped: list[str], rounds: int, enforce_timing: bool,
) -> Report:  # fmt: skip
    report = Report()
    report.context.append(
        f"end to end: {clip.stat().st_size / 1000**2:.1f} MB multipart POST /api/v1/media/ streamed over loopback "
        f"to gunicorn as `up` runs it ({WEB_WORKERS} gevent workers), one Celery worker as `up` starts it "
        f"(concurrency {WORKER_CONCURRENCY}), polling GET /api/v1/media/ID/status/ every {POLL_INTERVAL_S:g} s "
        f"on a new connection until it reads succeeded; {rounds} rounds, each setup next to its own "
        "`ffmpeg -i clip -f null -`, in turns first and second"
    )
    for name, runs in results.items():
        decode = decodes[name]
        report.timings.append(
            Timing(
                f"upload → poll reads succeeded ({name})",
                [r.total_s for r in runs],
                cpu_seconds=[r.cpu_s for r in runs],
            )
        )
        report.timings.append(
            Timing(f"`ffmpeg -i clip -f null -` next to it ({name})", [w for w, _ in decode],
                   cpu_seconds=[c for _, c in decode])
        )  # fmt: skip
        ratio = statistics.median(r.total_s / d for r, (d, _) in zip(runs, decode, strict=True))
        cpu_ratio = statistics.median(r.cpu_s / c for r, (_, c) in zip(runs, decode, strict=True))
        report.checks.append(
            Check("1", f"end to end ÷ full decode, {name} (median of the rounds' ratios)", f"{ratio:.2f}×",
                  f"≤ {E2E_RATIO_LIMIT}×", ratio <= E2E_RATIO_LIMIT if enforce_timing else None)
        )  # fmt: skip
        report.checks.append(
            Check("1", f"the same in CPU time, {name} (web and worker processes and their ffmpeg ÷ the decode)",
                  f"{cpu_ratio:.2f}×", f"≤ {E2E_RATIO_LIMIT}×", None)
        )  # fmt: skip
        report.notes.append(f"where the time goes, {name} (medians): {_breakdown(runs)}")
        report.notes.append(f"idle worker ({name}): {idle[name]:.1f} % of one core, main process and pool children")
    report.notes += skipped
    return report


def _breakdown(runs: list[E2ERound]) -> str:
    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s"

    stages = [stage for stage in (*_STAGES, "done") if any(stage in r.stages_s for r in runs)]
    stage_text = ", ".join(f"{stage} {median([r.stages_s.get(stage, 0.0) for r in runs])}" for stage in stages)
    return (
        f"upload {median([r.upload_s for r in runs])}; queue until a worker claims the job "
        f"{median([r.queue_s for r in runs])}; analysis {median([r.analysis_s for r in runs])} "
        f"(by the stage the polls first saw: {stage_text}); poll lag after the result is committed "
        f"{median([r.poll_lag_s for r in runs])}; {statistics.median([r.polls for r in runs]):.0f} polls; "
        f"CPU time of the web tier (upload and polls) {median([r.web_cpu_s for r in runs])}"
    )
