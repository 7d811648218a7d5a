"""Run the test suite with pytest; every argument after ``test`` goes to pytest unchanged.

The suite runs in parallel processes (pytest-xdist, one per core unless
``VERIFY_TEST_PROCESSES`` says otherwise), a test file per process at a time, so a module's
analysed clips are made once. Each process has its own run directory, database, queues and
Celery worker (``tests/environment.py``). Passing ``-n`` or ``-p no:xdist`` takes over.
The smoke runs of the benchmark and research commands and of ``up`` are left out unless asked
for with ``-m slow`` (pyproject.toml); CI runs them once.
"""

import os
import subprocess
import sys
from typing import Any

from django.core.management.base import BaseCommand


def pytest_argv(args: list[str]) -> list[str]:
    """Return pytest's arguments: the caller's, plus the parallel run unless the caller chose."""
    chosen = any(arg.startswith(("-n", "--numprocesses")) or arg == "no:xdist" for arg in args)
    processes = os.environ.get("VERIFY_TEST_PROCESSES", "auto")
    if chosen or processes in ("0", "1"):
        return args
    return ["-n", processes, "--dist", "loadfile", *args]


class Command(BaseCommand):
    help = (
        "Run the test suite with pytest (arguments are passed to pytest). It runs in one process per "
        "core; VERIFY_TEST_PROCESSES=1 or -p no:xdist runs it in one. -m slow runs the smoke runs of the benchmark "
        "and research commands and of up instead."
    )

    def run_from_argv(self, argv: list[str]) -> None:
        raise SystemExit(subprocess.call([sys.executable, "-m", "pytest", *pytest_argv(argv[2:])]))  # noqa: S603

    def handle(self, *args: Any, **options: Any) -> None:
        self.run_from_argv(["manage.py", "test"])
