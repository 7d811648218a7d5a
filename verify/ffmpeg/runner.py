"""The one runner of ffmpeg and ffprobe: kernel limits, a wall-clock deadline, capped output."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:  # not glibc: the parent-death signal is a Linux nicety, not a requirement
    _LIBC = None
_PR_SET_PDEATHSIG = 1
STDERR_TAIL_CHARS = 2000


class FFmpegError(Exception):
    """ffmpeg or ffprobe exited non-zero or overran its time limit."""

    def __init__(
        self,
        argv0: str,
        exit_code: int | None,
        stderr_tail: str,
        *,
        timed_out: bool,
        stdout: str = "",
        output_exceeded: str = "",
    ):
        self.argv0 = argv0
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out
        self.stdout = stdout
        self.output_exceeded = output_exceeded  # "stdout" or "stderr" when a cap stopped the run
        if timed_out:
            reason = "timed out"
        elif output_exceeded:
            reason = f"wrote more to {output_exceeded} than allowed"
        else:
            reason = f"exited with code {exit_code}"
        super().__init__(f"{Path(argv0).name} {reason}")

    @property
    def killed_by_signal(self) -> int | None:
        """Return the signal that ended the process (e.g. SIGXCPU, SIGXFSZ, SIGKILL), if one did."""
        return -self.exit_code if self.exit_code is not None and self.exit_code < 0 else None


@dataclass(frozen=True)
class ResourceLimits:
    """Kernel limits applied to the child process; None leaves a limit unset."""

    cpu_time_s: int | None = None
    address_space_bytes: int | None = None
    output_file_bytes: int | None = None

    def apply(self) -> None:
        """Set the limits on the calling process (runs in the child before exec)."""
        for limit, value in (
            (resource.RLIMIT_CPU, self.cpu_time_s),
            (resource.RLIMIT_AS, self.address_space_bytes),
            (resource.RLIMIT_FSIZE, self.output_file_bytes),
        ):
            if value is not None:
                resource.setrlimit(limit, (value, value))


@dataclass(frozen=True)
class RunResult:
    stdout: str
    stderr: str


def _child_setup(limits: ResourceLimits | None) -> Callable[[], None]:
    def setup() -> None:
        if _LIBC is not None:
            # If the worker process dies (OOM killer, SIGKILL), its decoder dies with it.
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if limits is not None:
            limits.apply()

    return setup


def run(
    argv: Sequence[str],
    *,
    timeout_s: float,
    limits: ResourceLimits | None = None,
    on_stdout_line: Callable[[str], None] | None = None,
    on_tick: Callable[[], None] | None = None,
    max_stdout_bytes: int | None = None,
    max_stderr_bytes: int | None = None,
) -> RunResult:
    """Run argv to completion within timeout_s; raise FFmpegError on failure or overrun.

    stdout and stderr are drained together so a chatty child can never block on a full pipe,
    and each is capped (``max_stdout_bytes``, ``max_stderr_bytes``) so a hostile file cannot
    fill the worker's memory. On timeout or overflow the whole process group is killed, so no
    decoder thread outlives the job. ``on_tick`` is called about once a second while the child
    runs; if it raises (the caller lost the job), the process group is killed and the error
    goes to the caller.
    """
    proc = subprocess.Popen(  # noqa: S603 - argv comes from the builders in this module
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_child_setup(limits),  # only prctl and setrlimit run between fork and exec
    )
    if proc.stdout is None or proc.stderr is None:
        raise RuntimeError("subprocess pipes were not created")
    caps = {proc.stdout.fileno(): ("stdout", max_stdout_bytes), proc.stderr.fileno(): ("stderr", max_stderr_bytes)}
    chunks: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    sizes = dict.fromkeys(chunks, 0)
    pending_line = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        for pipe in (proc.stdout, proc.stderr):
            os.set_blocking(pipe.fileno(), False)
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(proc)
                raise FFmpegError(argv[0], None, _tail(chunks[proc.stderr.fileno()]), timed_out=True)
            if on_tick is not None:
                try:
                    on_tick()
                except BaseException:  # the caller gave up on the job: no decoder outlives it
                    _kill_group(proc)
                    raise
            for key, _ in selector.select(timeout=min(remaining, 1.0)):
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                chunks[key.fd].append(data)
                sizes[key.fd] += len(data)
                name, cap = caps[key.fd]
                if cap is not None and sizes[key.fd] > cap:
                    _kill_group(proc)
                    raise FFmpegError(
                        argv[0], None, _tail(chunks[proc.stderr.fileno()]), timed_out=False, output_exceeded=name
                    )
                if on_stdout_line is not None and key.fd == proc.stdout.fileno():
                    *lines, pending_line = (pending_line + data).split(b"\n")
                    for line in lines:
                        on_stdout_line(line.decode("utf-8", "replace"))
    try:
        exit_code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise FFmpegError(argv[0], None, _tail(chunks[proc.stderr.fileno()]), timed_out=True) from None
    stdout = b"".join(chunks[proc.stdout.fileno()]).decode("utf-8", "replace")
    stderr = b"".join(chunks[proc.stderr.fileno()]).decode("utf-8", "replace")
    if exit_code != 0:
        raise FFmpegError(argv[0], exit_code, stderr[-STDERR_TAIL_CHARS:], timed_out=False, stdout=stdout)
    return RunResult(stdout=stdout, stderr=stderr)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(chunks: list[bytes]) -> str:
    return b"".join(chunks)[-STDERR_TAIL_CHARS:].decode("utf-8", "replace")
