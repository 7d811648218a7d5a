"""Status-endpoint benchmark: polling throughput and latency under load, and constant query counts."""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from workflows.benchmark.report import Check, Report
from workflows.benchmark.sandbox import sandbox_user
from workflows.benchmark.web import gunicorn_server
from workflows.services import case_media_submit

STATUS_RATE_LIMIT_PER_S = 600.0
STATUS_P95_LIMIT_S = 0.030


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
    seconds = max(1, round(duration_s))  # wrk refuses a fraction of a second
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s",
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
