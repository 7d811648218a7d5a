"""Prepare a fresh machine for ``manage.py up`` and ``manage.py test``, using only the stdlib.

Loaded by manage.py by file path, before Django is importable: it makes sure ffmpeg and
ffprobe are installed (with apt-get where it can), creates ``.venv`` with the pinned
requirements, and then re-runs the command inside that virtualenv. ``up`` needs only the
runtime pins (requirements.txt); every other command, ``test`` first of all, also gets the test
and tooling pins (requirements-dev.txt), as does ``up`` with VERIFY_DEV_REQUIREMENTS=1.
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
# The installer of the pins (see _install); pip is the fallback.
UV_PIN = "uv==0.13.8"
# One digest per line, for each requirements set installed in .venv as it is now.
STAMP = VENV_DIR / ".requirements.sha256"
RUNTIME_REQUIREMENTS = ROOT / "requirements.txt"
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"
# The only command that runs on the runtime pins alone.
RUNTIME_ONLY_COMMANDS = {"up"}
# System packages each command needs: the service needs ffmpeg and exiftool; the test suite also drives
# a headless Chromium through chromedriver.
# pdqhash (perceptual hashes) builds from source, so pip needs a C++ compiler.
# Debian's Tesseract language packs, read by verify.ocr (VERIFY_TESSDATA_DIR).
TESSDATA = "/usr/share/tesseract-ocr/5/tessdata"
APT_PACKAGES = {
    "up": {
        "ffmpeg": "ffmpeg",
        "ffprobe": "ffmpeg",
        "g++": "g++",
        "exiftool": "libimage-exiftool-perl",
        "openssl": "openssl",
        "/usr/share/doc/libpangoft2-1.0-0": "libpangoft2-1.0-0",
        # case reports (WeasyPrint): Pango, and fonts for Latin, Cyrillic and Arabic; files, not binaries
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf": "fonts-dejavu-core",
        "/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf": "fonts-noto-core",
        # text in keyframes: Tesseract and its language packs (files, not binaries)
        "tesseract": "tesseract-ocr",
        f"{TESSDATA}/ukr.traineddata": "tesseract-ocr-ukr",
        f"{TESSDATA}/rus.traineddata": "tesseract-ocr-rus",
        f"{TESSDATA}/ara.traineddata": "tesseract-ocr-ara",
    },
    "test": {
        "ffmpeg": "ffmpeg",
        "ffprobe": "ffmpeg",
        "g++": "g++",
        "exiftool": "libimage-exiftool-perl",
        "chromium": "chromium",
        "chromedriver": "chromium-driver",
        "openssl": "openssl",
        "/usr/share/doc/libpangoft2-1.0-0": "libpangoft2-1.0-0",
        # case reports (WeasyPrint): Pango, and fonts for Latin, Cyrillic and Arabic; files, not binaries
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf": "fonts-dejavu-core",
        "/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf": "fonts-noto-core",
        # text in keyframes: Tesseract and its language packs (files, not binaries)
        "tesseract": "tesseract-ocr",
        f"{TESSDATA}/ukr.traineddata": "tesseract-ocr-ukr",
        f"{TESSDATA}/rus.traineddata": "tesseract-ocr-rus",
        f"{TESSDATA}/ara.traineddata": "tesseract-ocr-ara",
    },
    # The status measurement loads gunicorn with wrk (Python threads stand in when it is missing).
    "benchmark": {
        "ffmpeg": "ffmpeg",
        "ffprobe": "ffmpeg",
        "g++": "g++",
        "exiftool": "libimage-exiftool-perl",
        "wrk": "wrk",
        # text in keyframes: Tesseract and its language packs (files, not binaries)
        "tesseract": "tesseract-ocr",
        f"{TESSDATA}/ukr.traineddata": "tesseract-ocr-ukr",
        f"{TESSDATA}/rus.traineddata": "tesseract-ocr-rus",
        f"{TESSDATA}/ara.traineddata": "tesseract-ocr-ara",
    },
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
    return {
        binary: package
        for binary, package in wanted.items()
        if not (os.path.exists(binary) if binary.startswith("/") else shutil.which(overrides.get(binary) or binary))
    }


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


def wants_dev_requirements(command: str) -> bool:
    """Return True when ``command`` needs the test and tooling pins as well as the runtime ones."""
    return command not in RUNTIME_ONLY_COMMANDS or os.environ.get("VERIFY_DEV_REQUIREMENTS") == "1"


def _digests() -> tuple[str, str]:
    runtime = RUNTIME_REQUIREMENTS.read_bytes()
    runtime_digest = hashlib.sha256(runtime).hexdigest()
    # requirements-dev.txt includes requirements.txt, so its stamp covers both files.
    dev_digest = hashlib.sha256(runtime + b"\0" + DEV_REQUIREMENTS.read_bytes()).hexdigest()
    return runtime_digest, dev_digest


def ensure_virtualenv(*, dev: bool) -> Path:
    """Create .venv and install the pins it lacks (runtime, or runtime + dev); return its python.

    The stamp lists the digest of every set installed: a .venv made for ``test`` serves ``up``
    as it is, and one made for ``up`` gets the dev pins the first time ``test`` runs. A changed
    requirements file changes its digest, so the next command installs again.
    """
    python = VENV_DIR / "bin" / "python"
    runtime_digest, dev_digest = _digests()
    wanted = dev_digest if dev else runtime_digest
    installed = set(STAMP.read_text().split()) if python.exists() and STAMP.exists() else set()
    if wanted in installed:
        return python
    if not python.exists():
        _say(f"creating {VENV_DIR}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV_DIR)
    requirements = DEV_REQUIREMENTS if dev else RUNTIME_REQUIREMENTS
    _say(f"installing the pins in {requirements.name} (first run takes a minute)")
    _install(python, requirements)
    STAMP.write_text("\n".join([runtime_digest, dev_digest] if dev else [runtime_digest]) + "\n")
    return python


def _install(python: Path, requirements: Path) -> None:
    """Install a requirements file into .venv with uv, or with pip where uv cannot.

    uv downloads and builds in parallel: on a fresh machine it installs the test pins in under a
    minute, where pip takes several. The pins are the same either way.
    """
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    uv = VENV_DIR / "bin" / "uv"
    try:
        if not uv.exists():
            subprocess.run([*pip, UV_PIN], check=True)  # noqa: S603
        subprocess.run(  # noqa: S603
            [str(uv), "pip", "install", "--quiet", "--python", str(python), "-r", str(requirements)], check=True
        )
        return
    except (OSError, subprocess.CalledProcessError):
        _say("uv could not install the pins; installing them with pip instead")
    subprocess.run([*pip, "-r", str(requirements)], check=True)  # noqa: S603


def bootstrap_and_reexec(argv: list[str]) -> None:
    """Prepare the machine for argv's command, then replace this process with it in .venv."""
    command = argv[1] if len(argv) > 1 else ""
    if command in APT_PACKAGES:
        ensure_system_packages(command)
    python = ensure_virtualenv(dev=wants_dev_requirements(command))
    os.execv(python, [str(python), *argv])  # noqa: S606
