"""Run each benchmark mode in a throwaway environment, so a real database or media store is never touched.

The command re-executes itself per mode in a child process whose environment points the
service at a temporary ``VERIFY_VAR_DIR``: a fresh SQLite database (or a throwaway PostgreSQL
database that is created before and dropped after), a temporary media root and broker
folder, and no S3 bucket. The child migrates, measures, and writes its report as JSON for
the parent to print; everything is removed when the child ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from workflows.benchmark.report import Report

SANDBOX_ENV = "VERIFY_BENCHMARK_SANDBOX"
THROWAWAY_DATABASE_PREFIX = "verify_benchmark_"
# Settings that would point the child at real data or at a real queue's consumers.
_STRIPPED_ENV = (
    "DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "VERIFY_BROKER_DIR", "FILE_UPLOAD_TEMP_DIR",
    "AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "VERIFY_ANALYSIS_QUEUE", "VERIFY_DEFAULT_QUEUE",
    "VERIFY_ANALYSIS_MODE",
)  # fmt: skip


# The role of someone who submits footage and polls its analysis.
SUBMITTER_ROLE = "analyst"


def sandbox_user(username: str) -> tuple[Any, str]:
    """Return a submitting user of the sandbox database and their API token."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.groups.add(Group.objects.get_or_create(name=SUBMITTER_ROLE)[0])
    token, _ = Token.objects.get_or_create(user=user)
    return user, str(token.key)


class SandboxError(RuntimeError):
    """The benchmark child failed; the message holds the tail of its output."""


def in_sandbox() -> bool:
    """Return whether this process runs in a sandbox the benchmark made for itself."""
    marker = os.environ.get(SANDBOX_ENV, "")
    if not marker or Path(marker).resolve() != Path(settings.VAR_DIR).resolve():
        return False
    database = settings.DATABASES["default"]
    name = str(database["NAME"])
    if database["ENGINE"].endswith("sqlite3"):
        return Path(name).resolve().is_relative_to(Path(marker).resolve())
    return name.startswith(THROWAWAY_DATABASE_PREFIX)


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """Create a throwaway database on the PostgreSQL server; yield its URL; drop it afterwards."""
    import psycopg
    from psycopg import sql

    name = f"{THROWAWAY_DATABASE_PREFIX}{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def sandbox_run(arguments: list[str], *, database_url: str | None = None) -> Report:
    """Run ``manage.py benchmark --sandboxed ... arguments`` in a throwaway environment; return its report."""
    with tempfile.TemporaryDirectory(prefix="verify-benchmark-") as root:
        env = {key: value for key, value in os.environ.items() if key not in _STRIPPED_ENV}
        upload_tmp = Path(root) / "upload-tmp"
        upload_tmp.mkdir()
        env.update(
            {
                "VERIFY_VAR_DIR": root,
                SANDBOX_ENV: root,
                "FILE_UPLOAD_TEMP_DIR": str(upload_tmp),
                # Nothing consumes this queue: the benchmark runs the analysis itself.
                "VERIFY_ANALYSIS_QUEUE": "benchmark-not-consumed",
                "VERIFY_DEFAULT_QUEUE": "benchmark-not-consumed-default",
            }
        )
        if database_url:
            env["DATABASE_URL"] = database_url
        report_path = Path(root) / "report.json"
        argv = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "benchmark",
                "--sandboxed", str(report_path), *arguments]  # fmt: skip
        # The child's progress and errors go straight to this process's stderr.
        completed = subprocess.run(argv, cwd=settings.BASE_DIR, env=env, check=False)  # noqa: S603 - this command again
        if completed.returncode != 0 or not report_path.exists():
            raise SandboxError(f"the benchmark child exited with code {completed.returncode} (its output is above)")
        return Report.from_json(report_path.read_text())
