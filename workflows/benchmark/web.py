"""Measure the web process: memory while a large upload streams in, and the status endpoint under load.

Both run a real gunicorn (sync workers) on loopback in the benchmark's sandbox, so the
requests go through the same WSGI stack, middleware, authentication and database as in
production. Memory is read from ``/proc/<worker pid>/status`` (``VmRSS`` now, ``VmHWM`` the
peak since ``clear_refs`` reset it), and sampled every 20 ms as well.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from workflows.benchmark.report import Check, Report
from workflows.benchmark.sandbox import sandbox_user
from workflows.services import case_media_submit

UPLOAD_GROWTH_LIMIT_BYTES = 50 * 1000**2
STATUS_RATE_LIMIT_PER_S = 600.0
STATUS_P95_LIMIT_S = 0.030
_SERVER_START_TIMEOUT_S = 60.0
_CHUNK_BYTES = 1024 * 1024
_SAMPLE_INTERVAL_S = 0.02


# --- gunicorn -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A running gunicorn: its master process, port and worker pids."""

    process: subprocess.Popen[bytes]
    port: int
    worker_pids: list[int]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_pids(parent_pid: int) -> list[int]:
    """Return the pids whose parent is parent_pid (from /proc/<pid>/stat)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the fields after its last ")" do not.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent_pid:
            pids.append(int(entry.name))
    return pids


def proc_memory_bytes(pid: int) -> tuple[int, int]:
    """Return (VmRSS, VmHWM) of a process in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def _reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@contextmanager
def gunicorn_server(*, workers: int, log_path: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Run gunicorn with sync workers on a free loopback port until the block ends (env: its environment)."""
    port = _free_port()
    argv = [sys.executable, "-m", "gunicorn", "verify.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--worker-class", "sync", "--timeout", "900",
            "--log-level", "warning"]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - argv is fixed above
            argv, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + _SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
            pids = child_pids(process.pid)
            if len(pids) == workers and _accepts(port):
                break
            time.sleep(0.1)
        yield Server(process=process, port=port, worker_pids=sorted(pids))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _mb(value: float) -> str:
    return f"{value / 1000**2:.1f} MB"


# --- upload ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadResult:
    status: int
    body: dict[str, Any]
    sha256: str
    seconds: float


def upload_stream(port: int, token: str, path: Path, *, size_bytes: int) -> UploadResult:
    """POST path to /api/v1/media/ as multipart, streaming it in 1 MiB chunks and hashing as it goes."""
    boundary = f"verify-benchmark-{uuid.uuid4().hex}"
    fields = {"title": "Benchmark upload", "claim": "A large file streamed by the benchmark."}
    preamble = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    preamble += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    )
    epilogue = f"\r\n--{boundary}--\r\n".encode()
    head = preamble.encode()
    digest = hashlib.sha256()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    started = time.perf_counter()
    try:
        conn.putrequest("POST", "/api/v1/media/")
        conn.putheader("Authorization", f"Token {token}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size_bytes + len(epilogue)))
        conn.endheaders()
        conn.send(head)
        with path.open("rb") as source:
            while chunk := source.read(_CHUNK_BYTES):
                digest.update(chunk)
                conn.send(chunk)
        conn.send(epilogue)
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
        status = response.status
    finally:
        conn.close()
    return UploadResult(status=status, body=body, sha256=digest.hexdigest(), seconds=time.perf_counter() - started)


class _PeakSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_bytes = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(_SAMPLE_INTERVAL_S):
            self.peak_bytes = max(self.peak_bytes, proc_memory_bytes(self.pid)[0])


def upload_benchmark(*, head_clip: Path, size_bytes: int, workdir: Path) -> Report:
    """Stream a file of size_bytes (a real MP4 followed by zeros) into a gunicorn worker; measure its growth."""
    _, token = sandbox_user("benchmark-upload")
    big = workdir / "upload.mp4"
    shutil.copyfile(head_clip, big)
    with big.open("r+b") as handle:
        handle.truncate(size_bytes)  # sparse: the zeros cost no disk until the upload stores them
    with gunicorn_server(workers=1, log_path=workdir / "gunicorn-upload.log") as server:
        (worker,) = server.worker_pids
        warm_up = upload_stream(server.port, token, head_clip, size_bytes=head_clip.stat().st_size)
        if warm_up.status != 202:
            raise RuntimeError(f"the warm-up upload answered {warm_up.status}: {warm_up.body}")
        _reset_peak(worker)
        before_bytes, _ = proc_memory_bytes(worker)
        sampler = _PeakSampler(worker)
        sampler.start()
        result = upload_stream(server.port, token, big, size_bytes=size_bytes)
        sampler.stopping.set()
        sampler.join()
        after_bytes, hwm_bytes = proc_memory_bytes(worker)
    big.unlink()
    if result.status != 202:
        raise RuntimeError(f"the upload answered {result.status}: {result.body}")
    peak_bytes = max(hwm_bytes, sampler.peak_bytes)
    growth = peak_bytes - before_bytes
    report = Report()
    report.context.append(
        f"upload: {size_bytes / 1000**3:.2f} GB ({size_bytes / 1024**3:.2f} GiB) multipart POST /api/v1/media/ "
        "streamed over loopback to gunicorn "
        f"(1 sync worker) in {result.seconds:.1f} s ({size_bytes / result.seconds / 1000**2:.0f} MB/s)"
    )
    report.checks += [
        Check("4", f"web worker growth during a {size_bytes / 1000**3:.2f} GB upload (peak − before)",
              f"{_mb(growth)} (before {_mb(before_bytes)}, peak {_mb(peak_bytes)}, after {_mb(after_bytes)})",
              f"< {_mb(UPLOAD_GROWTH_LIMIT_BYTES)}", growth < UPLOAD_GROWTH_LIMIT_BYTES),
        Check("4", "server's SHA-256 and size equal the bytes sent",
              "equal" if (result.body.get("sha256"), result.body.get("size_bytes")) == (result.sha256, size_bytes)
              else f"server {result.body.get('sha256')} / {result.body.get('size_bytes')}",
              "equal", result.body.get("sha256") == result.sha256 and result.body.get("size_bytes") == size_bytes),
    ]  # fmt: skip
    return report


# --- status ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    generator: str
    requests: int
    duration_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    failures: int

    @property
    def rate_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


_WRK_SCRIPT = """
%(auth)s
local limit = %(per_thread)d
local count = 0
function response(status, headers, body)
  count = count + 1
  if count >= limit then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, '
    .. '"failures": %%d}\\n', summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def wrk_load(
    url: str, token: str, *, threads: int, connections: int, duration_s: float, max_requests: int, workdir: Path
) -> LoadResult:
    """Load url with wrk for at most duration_s and max_requests; return throughput and latency."""
    script = workdir / "status.lua"
    auth = f'wrk.headers["Authorization"] = "Token {token}"' if token else ""
    script.write_text(_WRK_SCRIPT % {"auth": auth, "per_thread": math.ceil(max_requests / threads)})
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s", "--timeout", "5s",
            "-s", str(script), url]  # fmt: skip
    completed = subprocess.run(  # noqa: S603 - argv is fixed above
        argv, capture_output=True, text=True, timeout=duration_s + 60, check=True
    )
    line = next(line for line in completed.stdout.splitlines() if line.startswith("{"))
    data = json.loads(line)
    return LoadResult(
        generator=f"wrk, {threads} threads, {connections} connections",
        requests=int(data["requests"]),
        duration_s=int(data["duration_us"]) / 1e6,
        p50_s=int(data["p50_us"]) / 1e6,
        p95_s=int(data["p95_us"]) / 1e6,
        p99_s=int(data["p99_us"]) / 1e6,
        failures=int(data["failures"]),
    )


def threads_load(
    url: str, token: str, *, connections: int, duration_s: float, max_requests: int, expected_status: int = 200
) -> LoadResult:
    """Load url from Python threads (when wrk is not installed); bounded in time and count.

    A request counts, with its latency, when it is answered with ``expected_status``.
    """
    host_port = url.split("://", 1)[1].split("/", 1)
    host, port = host_port[0].rsplit(":", 1)
    path = "/" + host_port[1]
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + duration_s

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                if len(latencies) + failures[0] >= max_requests:
                    return
            started = time.perf_counter()
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            try:
                conn.request("GET", path, headers={"Authorization": f"Token {token}"} if token else {})
                ok = conn.getresponse().status == expected_status
            except OSError:
                ok = False
            finally:
                conn.close()
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    failures[0] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return LoadResult(
        generator=f"Python threads, {connections} connections (wrk not installed)",
        requests=len(latencies) + failures[0],
        duration_s=elapsed,
        p50_s=percentile(50),
        p95_s=percentile(95),
        p99_s=percentile(99),
        failures=failures[0],
    )


def _submit_small(clip: Path, *, user: Any, title: str) -> Any:
    with clip.open("rb") as handle:
        upload = UploadedFile(handle, name=clip.name, content_type="video/mp4", size=clip.stat().st_size)
        return case_media_submit(
            case=None, claim_fields={"title": title, "claim": "Benchmark."}, upload=upload, submitted_by=user
        )


def list_query_counts(clip: Path, *, user: Any, token: str) -> dict[str, tuple[int, int]]:
    """Return, for the media and case lists, the queries answering with 1 and with 50 items."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    paths = {"/api/v1/media/": "media", "/api/v1/cases/": "cases"}

    def count() -> dict[str, int]:
        counts = {}
        for path in paths:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path, {"page_size": 500})
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} answered {response.status_code}")
            counts[path] = len(queries)
        return counts

    one = count()
    for index in range(49):
        _submit_small(clip, user=user, title=f"Benchmark case {index + 2}")
    fifty = count()
    return {path: (one[path], fifty[path]) for path in paths}


def status_benchmark(
    *, clip: Path, workdir: Path, web_workers: int, connections: int, duration_s: float, rounds: int,
    max_requests: int, enforce: bool, database: str,
) -> Report:  # fmt: skip
    """Measure the polling endpoint's throughput and p95 latency, and the list endpoints' query counts.

    Each round loads the status endpoint, then the same server's 401 answer (no database query)
    as a control for what the machine allows at that moment; the checks take the median round.
    """
    user, token = sandbox_user("benchmark-status")
    item = _submit_small(clip, user=user, title="Benchmark case 1")
    counts = list_query_counts(clip, user=user, token=token)
    url = f"/api/v1/media/{item.pk}/status/"

    def run_load(token: str, seconds: float) -> LoadResult:
        if shutil.which("wrk"):
            return wrk_load(server.url + url, token, threads=2, connections=connections, duration_s=seconds,
                            max_requests=max_requests, workdir=workdir)  # fmt: skip
        return threads_load(server.url + url, token, connections=connections, duration_s=seconds,
                            max_requests=max_requests, expected_status=200 if token else 401)  # fmt: skip

    loads: list[LoadResult] = []
    controls: list[LoadResult] = []
    with gunicorn_server(workers=web_workers, log_path=workdir / "gunicorn-status.log") as server:
        run_load(token, 3.0)  # warm-up: every worker imports, connects and prepares its statements
        for _ in range(rounds):
            loads.append(run_load(token, duration_s))
            controls.append(run_load("", max(duration_s / 2, 1.0)))
    if not any(load.requests for load in loads) and enforce:
        log = (workdir / "gunicorn-status.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the load generator got no answer from gunicorn; its log ends:\n{log}")
    load = _median_round(loads)
    control = _median_round(controls)
    report = Report()
    report.context.append(
        f"status: GET {url} as an analyst, under gunicorn ({web_workers} sync workers) on {database}, "
        f"{os.cpu_count()} CPUs shared with the load generator ({load.generator}); {rounds} rounds of "
        f"{duration_s:g} s, each followed by the control; the median round: {load.requests} requests in "
        f"{load.duration_s:.1f} s, p50 {load.p50_s * 1000:.1f} ms, p99 {load.p99_s * 1000:.1f} ms, "
        f"{load.failures} failed; every round: {_rounds_text(loads)}"
    )
    report.notes.append(
        f"control: the same gunicorn and load generator answered an unauthenticated request (401, no database "
        f"query) at {control.rate_per_s:.0f} req/s, p95 {control.p95_s * 1000:.1f} ms in the median round "
        f"(every round: {_rounds_text(controls)})"
    )
    failures = sum(result.failures for result in loads)
    rate_ok = load.rate_per_s >= STATUS_RATE_LIMIT_PER_S and failures == 0
    report.checks += [
        Check("5", "status endpoint throughput (median round)", f"{load.rate_per_s:.0f} req/s",
              f"≥ {STATUS_RATE_LIMIT_PER_S:.0f} req/s", rate_ok if enforce else None),
        Check("5", "status endpoint p95 latency (median round)", f"{load.p95_s * 1000:.1f} ms",
              f"< {STATUS_P95_LIMIT_S * 1000:.0f} ms", load.p95_s < STATUS_P95_LIMIT_S if enforce else None),
    ]  # fmt: skip
    for path, (one, fifty) in counts.items():
        report.checks.append(Check("5", f"queries for GET {path}, 1 vs 50 items", f"{one} vs {fifty}", "equal",
                                   one == fifty))  # fmt: skip
    return report


def _median_round(results: list[LoadResult]) -> LoadResult:
    """Return the round with the median throughput (the lower middle one of an even count)."""
    ordered = sorted(results, key=lambda result: result.rate_per_s)
    return ordered[(len(ordered) - 1) // 2]


def _rounds_text(results: list[LoadResult]) -> str:
    return ", ".join(f"{result.rate_per_s:.0f} req/s p95 {result.p95_s * 1000:.1f} ms" for result in results)
