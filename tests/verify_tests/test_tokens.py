"""API tokens: `create_api_user --rotate` replaces a token; `up` shows the admin's token only once."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.conftest import ROOT, make_user, token_client
from tests.ports import free_port

BANNER_TIMEOUT_S = 90


@pytest.mark.django_db
def test_create_api_user_rotate_replaces_the_token():
    # given
    user = make_user("scripted", "analyst")
    old_key = user.auth_token.key
    stdout = io.StringIO()

    # when
    call_command("create_api_user", "scripted", "--rotate", stdout=stdout, stderr=io.StringIO())
    new_key = stdout.getvalue().strip()

    # then
    assert new_key and new_key != old_key
    user.refresh_from_db()
    old = token_client(user)
    old.credentials(HTTP_AUTHORIZATION=f"Token {old_key}")
    new = token_client(user)
    new.credentials(HTTP_AUTHORIZATION=f"Token {new_key}")
    refused = old.get("/api/v1/media/")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_failed"
    assert new.get("/api/v1/media/").status_code == 200


@pytest.mark.django_db
def test_create_api_user_rotate_refuses_an_unknown_user():
    # when
    with pytest.raises(Exception, match="No user 'nobody'"):
        call_command("create_api_user", "nobody", "--rotate", stdout=io.StringIO(), stderr=io.StringIO())


def _run_up_until_ready(var_dir: Path) -> str:
    """Run `manage.py up` on its own var/ until it prints its banner; stop it; return what it printed."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "VERIFY_BROKER_DIR", "DJANGO_SECRET_KEY"}
    }
    env["VERIFY_VAR_DIR"] = str(var_dir)
    log_path = var_dir.parent / f"{var_dir.name}-up.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--bind", f"127.0.0.1:{free_port()}", "--web-workers", "1",
             "--concurrency", "1"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        while "Press Ctrl-C to stop." not in log_path.read_text(errors="replace"):
            assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return log_path.read_text(errors="replace")


@pytest.mark.slow  # runs `manage.py up` twice; CI runs it on PostgreSQL + Redis
@pytest.mark.timeout(240)
def test_up_shows_the_admin_token_only_when_it_creates_it(tmp_path: Path):
    # when
    first = _run_up_until_ready(tmp_path / "var")
    second = _run_up_until_ready(tmp_path / "var")

    # then
    first_banner = first[first.index("Media verification service is running.") :]
    token_line = next(line for line in first_banner.splitlines() if "API token (admin):" in line)
    token = token_line.split()[-3]
    assert len(token) == 40 and token_line.endswith("(shown once)")
    assert " ready." in first[: first.index("Media verification service is running.")]  # the worker came first
    assert token not in second
    assert "create_api_user admin --rotate" in second
    assert "GET /admin/login/" not in first  # no access log unless --access-log
