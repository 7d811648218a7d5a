"""Deployment settings: a weak secret key is refused beyond loopback; the production set passes `check --deploy`.

Each case runs manage.py in a subprocess, because the settings are read once per process.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections
from django.test import Client

from tests.conftest import ROOT, database_url

HOW_TO = 'python3 -c "import secrets; print(secrets.token_urlsafe(50))"'
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_ALLOWED_HOSTS": "verify.example.org",
    "DJANGO_SESSION_COOKIE_SECURE": "1",
    "DJANGO_CSRF_COOKIE_SECURE": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://verify.example.org",
}


def manage(*args: str, env: dict[str, str], unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run manage.py with env on top of the test environment (less the names in unset)."""
    environment = {name: value for name, value in os.environ.items() if name not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_on_the_documented_production_settings():
    # given
    env = {**PRODUCTION_ENV, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}

    # when: the deployment checks, to warnings; then every check, to errors (drf-spectacular warns
    # about enum names in the schema, which is no deployment matter)
    security = manage("check", "--deploy", "--tag", "security", "--fail-level", "WARNING", env=env)
    everything = manage("check", "--deploy", env=env)

    # then
    assert security.returncode == 0, security.stdout + security.stderr
    assert "System check identified no issues" in security.stdout
    assert everything.returncode == 0, everything.stdout + everything.stderr
    assert "security." not in everything.stdout + everything.stderr


@pytest.mark.parametrize(
    ("key", "reason"),
    [("change-me-in-production", "has 23 characters; it needs at least 50"), ("a" * 60, "5 different characters")],
)
def test_service_refuses_a_short_or_repetitive_key_on_a_public_host(key: str, reason: str):
    # when
    completed = manage("check", env={**PRODUCTION_ENV, "DJANGO_SECRET_KEY": key})

    # then
    assert completed.returncode != 0
    assert "Refusing to serve verify.example.org" in completed.stderr
    assert reason in completed.stderr
    assert HOW_TO in completed.stderr


def test_service_refuses_a_generated_key_on_a_public_host():
    # when
    completed = manage("check", env=PRODUCTION_ENV, unset=("DJANGO_SECRET_KEY",))

    # then
    assert completed.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in completed.stderr
    assert HOW_TO in completed.stderr


def test_check_deploy_reports_a_generated_key_as_an_error(tmp_path: Path):
    # given: the embedded service on loopback, which may run on a key of its own
    env = {"VERIFY_VAR_DIR": str(tmp_path)}

    # when
    completed = manage("check", "--deploy", env=env, unset=("DJANGO_SECRET_KEY",))

    # then
    assert completed.returncode != 0
    assert "verify.E001" in completed.stderr
    assert HOW_TO in completed.stderr
    key_file = tmp_path / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_text().strip()) >= 50


def test_up_refuses_to_listen_beyond_loopback_without_a_key(tmp_path: Path):
    # when
    completed = manage(
        "up", "--bind", "0.0.0.0:8999", env={"VERIFY_VAR_DIR": str(tmp_path)}, unset=("DJANGO_SECRET_KEY",)
    )

    # then
    assert completed.returncode != 0
    assert "Refusing to listen on 0.0.0.0:8999, beyond loopback: DJANGO_SECRET_KEY is not set" in completed.stderr
    assert HOW_TO in completed.stderr
    assert not (tmp_path / "verify.sqlite3").exists()  # refused before migrating anything


def test_https_settings_follow_the_environment():
    # when
    completed = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_HSTS_SECONDS, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.CSRF_TRUSTED_ORIGINS)",
        env={**PRODUCTION_ENV, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)},
    )

    # then
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == (
        "('HTTP_X_FORWARDED_PROTO', 'https') 31536000 True True True ['https://verify.example.org']"
    )


def _script_sources(html: str) -> list[str | None]:
    return [(re.search(r'\bsrc="([^"]+)"', tag) or [None, None])[1] for tag in re.findall(r"<script\b[^>]*>", html)]


@pytest.mark.django_db
def test_admin_login_is_served_under_a_script_policy_without_inline_scripts():
    # when
    response = Client().get("/admin/login/")

    # then
    policy = response["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", policy)
    assert script_src and script_src[1] == "'self'"
    assert "'unsafe-inline'" not in script_src[1]
    assert "frame-ancestors 'none'" in policy
    assert None not in _script_sources(response.content.decode())  # every script is a file


@pytest.mark.django_db
def test_api_docs_carry_the_policy(api):
    # when
    response = api.get("/api/v1/docs/")

    # then
    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_api_docs_need_no_inline_script(api):
    # when
    response = api.get("/api/v1/docs/")

    # then
    assert None not in _script_sources(response.content.decode())


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="Django's pool is PostgreSQL's"
)
def test_database_pool_setting_serves_queries_from_django_pool(db):
    # given the pool turned on for a process on the test database
    test_database = database_url(connections["default"].settings_dict)
    env = {"DATABASE_URL": test_database, "DATABASE_POOL": "true", "DATABASE_POOL_MAX_SIZE": "2"}

    # when a query runs
    probe = (
        "from django.db import connection\n"
        "with connection.cursor() as cursor: cursor.execute('SELECT 41 + 1'); print(cursor.fetchone()[0])\n"
        "print(type(connection.pool).__name__, connection.pool.max_size, connection.settings_dict['CONN_MAX_AGE'])"
    )
    result = manage("shell", "--no-imports", "-c", probe, env=env)

    # then it is answered over a connection of Django's pool, not a persistent one
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["42", "ConnectionPool", "2", "0"]
