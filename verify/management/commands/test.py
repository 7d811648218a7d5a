"""Run the test suite with pytest; every argument after ``test`` goes to pytest unchanged."""

import subprocess
import sys
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the test suite with pytest (arguments are passed to pytest)."

    def run_from_argv(self, argv: list[str]) -> None:
        raise SystemExit(subprocess.call([sys.executable, "-m", "pytest", *argv[2:]]))  # noqa: S603

    def handle(self, *args: Any, **options: Any) -> None:
        self.run_from_argv(["manage.py", "test"])
