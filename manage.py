#!/usr/bin/env python3
"""Django's command-line utility for the media-verification service.

Run with any Python 3.11: outside the project's virtualenv it first prepares the machine
(verify/bootstrap.py) and then re-runs itself inside .venv.
"""

import importlib.util
import os
import sys
from pathlib import Path


def _bootstrap() -> None:
    path = Path(__file__).resolve().parent / "verify" / "bootstrap.py"
    spec = importlib.util.spec_from_file_location("verify_bootstrap", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    if not bootstrap.in_project_venv():
        bootstrap.bootstrap_and_reexec(sys.argv)


def main() -> None:
    _bootstrap()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "verify.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
