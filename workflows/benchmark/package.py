"""Package benchmark: the memory of a web worker while a client downloads a large evidence package.

A case holds one large original (a real MP4 followed by zeros, written sparsely). Its package is
made in this process, as a worker would make it, and then downloaded through a real gunicorn
worker; the worker's resident memory is sampled while the ZIP streams.
"""

from __future__ import annotations

import hashlib
import http.client
import shutil
import time
from pathlib import Path

from workflows.benchmark.report import Check, Report
from workflows.benchmark.sandbox import sandbox_user
from workflows.benchmark.web import (
    UPLOAD_GROWTH_LIMIT_BYTES,
    PeakSampler,
    gunicorn_server,
    megabytes,
    proc_memory_bytes,
    reset_peak,
    upload_stream,
)
from workflows.models import Case, Export
from workflows.services.exports import export_generate, export_request

_CHUNK_BYTES = 1024 * 1024


def _package_of(path: Path, *, port: int, token: str, user: object) -> Export:
    """Upload path into a new case and make that case's package; return the export."""
    uploaded = upload_stream(port, token, path, size_bytes=path.stat().st_size)
    if uploaded.status != 202:
        raise RuntimeError(f"the upload answered {uploaded.status}: {uploaded.body}")
    case = Case.objects.get(pk=uploaded.body["case"])
    export = export_request(case=case, kind=Export.Kind.PACKAGE, requested_by=user)
    export_generate(export_id=export.pk)
    export.refresh_from_db()
    if export.state != Export.State.SUCCEEDED:
        raise RuntimeError(f"the package was not made: {export.error_message}")
    return export


def _download(port: int, token: str, export: Export) -> tuple[int, int, str, float]:
    """GET the export's file in 1 MiB reads; return the status, bytes, their SHA-256 and seconds."""
    digest = hashlib.sha256()
    received = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    started = time.perf_counter()
    try:
        conn.request("GET", f"/api/v1/exports/{export.pk}/download/", headers={"Authorization": f"Token {token}"})
        response = conn.getresponse()
        while chunk := response.read(_CHUNK_BYTES):
            received += len(chunk)
            digest.update(chunk)
        status = response.status
    finally:
        conn.close()
    return status, received, digest.hexdigest(), time.perf_counter() - started


def package_benchmark(*, head_clip: Path, size_bytes: int, workdir: Path) -> Report:
    """Download the package of a case with a size_bytes original through one gunicorn worker; measure it."""
    user, token = sandbox_user("benchmark-package")
    big = workdir / "package-original.mp4"
    shutil.copyfile(head_clip, big)
    with big.open("r+b") as handle:
        handle.truncate(size_bytes)  # sparse: the zeros cost no disk until the upload stores them
    with gunicorn_server(workers=1, log_path=workdir / "gunicorn-package.log") as server:
        (worker,) = server.worker_pids
        warm_up = _package_of(head_clip, port=server.port, token=token, user=user)
        if _download(server.port, token, warm_up)[0] != 200:
            raise RuntimeError("the warm-up package download failed")
        export = _package_of(big, port=server.port, token=token, user=user)
        reset_peak(worker)
        before_bytes, _ = proc_memory_bytes(worker)
        sampler = PeakSampler(worker)
        sampler.start()
        status, received, _, seconds = _download(server.port, token, export)
        sampler.stopping.set()
        sampler.join()
        _, hwm_bytes = proc_memory_bytes(worker)
    big.unlink()
    if status != 200:
        raise RuntimeError(f"the package download answered {status}")
    growth = max(hwm_bytes, sampler.peak_bytes) - before_bytes
    report = Report()
    report.context.append(
        f"package: the evidence package of a case with a {size_bytes / 1000**3:.2f} GB original, "
        f"{received / 1000**3:.2f} GB streamed from gunicorn (1 sync worker) in {seconds:.1f} s"
    )
    report.checks += [
        Check("13", f"web worker growth while a {received / 1000**3:.2f} GB package streams (peak − before)",
              f"{megabytes(growth)} (before {megabytes(before_bytes)})",
              f"< {megabytes(UPLOAD_GROWTH_LIMIT_BYTES)}", growth < UPLOAD_GROWTH_LIMIT_BYTES),
        Check("13", "the package holds at least the original's bytes", f"{received:,} bytes",
              f"≥ {size_bytes:,} bytes", received >= size_bytes),
    ]  # fmt: skip
    return report
