"""Prepare a fresh machine for ``manage.py up`` and ``manage.py test``, using only the stdlib.

Loaded by manage.py by file path, before Django is importable: it makes sure ffmpeg and
ffprobe are installed (with apt-get where it can), creates ``.venv`` with the pinned
requirements, and then re-runs the command inside that virtualenv.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_DIR = ROOT / ".venv"
STAMP = VENV_DIR / ".requirements.sha256"
# System packages each command needs: the service needs ffmpeg; the test suite also drives
# a headless Chromium through chromedriver.
# pdqhash (perceptual hashes) builds from source, so pip needs a C++ compiler.
APT_PACKAGES = {
    "up": {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "g++": "g++"},
    "test": {
        "ffmpeg": "ffmpeg",
        "ffprobe": "ffmpeg",
        "g++": "g++",
        "chromium": "chromium",
        "chromedriver": "chromium-driver",
    },
    # The status measurement loads gunicorn with wrk (Python threads stand in when it is missing).
    "benchmark": {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "g++": "g++", "wrk": "wrk"},
}
INSTALL_HINT = (
    "Install them with your package manager (Debian/Ubuntu: sudo apt-get install {packages};"
    " macOS: brew install ffmpeg chromium chromedriver), or point FFMPEG_BINARY and FFPROBE_BINARY"
    " at existing binaries, then run the command again."
)


def in_project_venv() -> bool:
    """Return True when this interpreter is the project's .venv (or bootstrapping is off)."""
    if os.environ.get("VERIFY_NO_BOOTSTRAP") == "1":
        return True
    return Path(sys.prefix).resolve() == VENV_DIR.resolve()


def _say(message: str) -> None:
    print(f"[setup] {message}", file=sys.stderr, flush=True)


def _missing_binaries(command: str) -> dict[str, str]:
    wanted = APT_PACKAGES[command]
    overrides = {"ffmpeg": os.environ.get("FFMPEG_BINARY"), "ffprobe": os.environ.get("FFPROBE_BINARY")}
    return {binary: package for binary, package in wanted.items() if not shutil.which(overrides.get(binary) or binary)}


def _apt_prefix() -> list[str] | None:
    if not shutil.which("apt-get"):
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:  # noqa: S603, S607
        return ["sudo", "-n"]
    return None


def ensure_system_packages(command: str) -> None:
    """Install missing system binaries with apt-get, or stop with a message saying how."""
    missing = _missing_binaries(command)
    if not missing:
        return
    packages = sorted(set(missing.values()))
    prefix = _apt_prefix()
    if prefix is None:
        _say(f"missing: {', '.join(sorted(missing))}.")
        _say(INSTALL_HINT.format(packages=" ".join(packages)))
        raise SystemExit(2)
    _say(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True, env=env)  # noqa: S603
    subprocess.run(  # noqa: S603
        [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, env=env
    )
    still_missing = _missing_binaries(command)
    if still_missing:
        _say(f"apt-get ran but {', '.join(sorted(still_missing))} is still missing.")
        _say(INSTALL_HINT.format(packages=" ".join(packages)))
        raise SystemExit(2)


def ensure_virtualenv() -> Path:
    """Create .venv and install requirements.txt into it when they changed; return its python."""
    python = VENV_DIR / "bin" / "python"
    requirements = ROOT / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == digest:
        return python
    if not python.exists():
        _say(f"creating {VENV_DIR}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV_DIR)
    _say("installing pinned requirements (first run takes a minute)")
    subprocess.run(  # noqa: S603
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(requirements)],
        check=True,
    )
    STAMP.write_text(digest)
    return python


def bootstrap_and_reexec(argv: list[str]) -> None:
    """Prepare the machine for argv's command, then replace this process with it in .venv."""
    command = argv[1] if len(argv) > 1 else ""
    if command in APT_PACKAGES:
        ensure_system_packages(command)
    python = ensure_virtualenv()
    os.execv(python, [str(python), *argv])  # noqa: S606
