"""Web benchmark: a gunicorn server on loopback, and the memory of a web worker during a large upload.

Both run a real gunicorn (sync workers) on loopback in the benchmark's sandbox, so the
requests go through the same WSGI stack, middleware, authentication and database as in
production. Memory is read from ``/proc/<worker pid>/status`` (``VmRSS`` now, ``VmHWM`` the
peak since ``clear_refs`` reset it), and sampled every 20 ms as well.
"""

from __future__ import annotations

import hashlib
import http.client
import json
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

from workflows.benchmark.report import Check, Report
from workflows.benchmark.sandbox import sandbox_user

UPLOAD_GROWTH_LIMIT_BYTES = 50 * 1000**2
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


def reset_peak(pid: int) -> None:
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


def megabytes(value: float) -> str:
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


class PeakSampler(threading.Thread):
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
        reset_peak(worker)
        before_bytes, _ = proc_memory_bytes(worker)
        sampler = PeakSampler(worker)
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
              f"{megabytes(growth)} (before {megabytes(before_bytes)}, peak {megabytes(peak_bytes)}, "
              f"after {megabytes(after_bytes)})",
              f"< {megabytes(UPLOAD_GROWTH_LIMIT_BYTES)}", growth < UPLOAD_GROWTH_LIMIT_BYTES),
        Check("4", "server's SHA-256 and size equal the bytes sent",
              "equal" if (result.body.get("sha256"), result.body.get("size_bytes")) == (result.sha256, size_bytes)
              else f"server {result.body.get('sha256')} / {result.body.get('size_bytes')}",
              "equal", result.body.get("sha256") == result.sha256 and result.body.get("size_bytes") == size_bytes),
    ]  # fmt: skip
    return report


# --- status ---------------------------------------------------------------------------------
