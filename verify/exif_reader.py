"""The exiftool process: one long-lived ``-stay_open`` exiftool per worker, a deadline per file.

The file is passed as a server path, never through a shell; the answer is ``-json -G1 -n``
without the groups that describe this server's copy of the file.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import exiftool
import exiftool.exiftool as _exiftool_impl

EXIFTOOL_ARGS = ["-json", "-G1", "-n", "-api", "largefilesupport=1", "-charset", "filename=utf8"]
# Groups that describe this server's copy (path, permissions, file-system dates), not the evidence.
_SERVER_GROUPS = ("System:", "SourceFile")


class ExifReadError(Exception):
    """exiftool could not read the file in time, or did not answer with JSON."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


def _read_until(fd: int, marker: bytes, block_size: int) -> bytes:
    # pyexiftool 0.5.6 reads until exiftool prints its ready marker and loops forever on EOF;
    # this reader stops at EOF, so a killed (timed-out) exiftool ends the call instead.
    chunks: list[bytes] = []
    tail = b""
    while not tail.rstrip().endswith(marker):
        data = os.read(fd, block_size)
        if not data:
            raise ExifReadError("exiftool stopped before it answered")
        chunks.append(data)
        tail = (tail + data)[-(len(marker) + 8) :]
    return b"".join(chunks)


_exiftool_impl._read_fd_endswith = _read_until  # type: ignore[assignment]

_lock = threading.Lock()
_process: dict[int, exiftool.ExifTool] = {}


def _running_exiftool() -> exiftool.ExifTool:
    # One per OS process: a forked pool child must not share its parent's pipes.
    tool = _process.get(os.getpid())
    if tool is None or not tool.running:
        tool = exiftool.ExifTool(common_args=EXIFTOOL_ARGS)
        tool.run()
        _process.clear()
        _process[os.getpid()] = tool
    return tool


def _stop(tool: exiftool.ExifTool) -> None:
    process = tool._process
    if process is not None and process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)


def _execute(args: list[str], *, timeout_s: float, raw_bytes: bool = False) -> Any:
    with _lock:
        tool = _running_exiftool()
        watchdog = threading.Timer(timeout_s, _stop, args=(tool,))
        watchdog.start()
        try:
            return tool.execute(*args, raw_bytes=raw_bytes)
        except ExifReadError as exc:
            tool._flag_running_false()
            _process.clear()
            raise ExifReadError("exiftool took too long to read the file", timed_out=True) from exc
        finally:
            watchdog.cancel()


def exif_read(path: Path, *, timeout_s: float) -> dict[str, Any]:
    """Return exiftool's grouped tags for one file, without the fields that describe this server."""
    answer = _execute([str(Path(path).resolve())], timeout_s=timeout_s)
    try:
        # Floats stay as written: "16.10" is a version, not 16.1.
        parsed = json.loads(answer or "[]", parse_float=str)
    except json.JSONDecodeError as exc:
        raise ExifReadError("exiftool did not answer with JSON") from exc
    if not parsed or not isinstance(parsed[0], dict):
        return {}
    return {key: value for key, value in parsed[0].items() if not key.startswith(_SERVER_GROUPS)}


def exif_thumbnail(path: Path, *, timeout_s: float) -> bytes:
    """Return the EXIF thumbnail embedded in a photo, or b"" if it has none."""
    answer = _execute(["-b", "-ThumbnailImage", str(Path(path).resolve())], timeout_s=timeout_s)
    try:
        parsed = json.loads(answer or "[]")
    except json.JSONDecodeError:
        return b""
    value = next((v for k, v in (parsed[0] if parsed else {}).items() if k.endswith(":ThumbnailImage")), "")
    if not isinstance(value, str) or not value.startswith("base64:"):  # -json writes binary as base64
        return b""
    data = base64.b64decode(value.removeprefix("base64:"), validate=False)
    return data if data.startswith(b"\xff\xd8") else b""


def exiftool_version() -> str:
    """Return the version of the exiftool this worker runs."""
    with _lock:
        return str(_running_exiftool().version)
