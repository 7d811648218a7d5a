"""Shared fixtures: API clients, a real Celery worker on the real broker, generated footage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import media

ROOT = Path(__file__).resolve().parent.parent
WORKER_START_TIMEOUT_S = 60
ANALYSIS_TIMEOUT_S = 120


def database_url(db: dict[str, Any]) -> str:
    """Return a DATABASE_URL pointing at the database Django is connected to (the test one)."""
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db.get("USER") or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{db['NAME']}"


@dataclass
class WorkerProcess:
    """A `celery worker` subprocess consuming the test queues."""

    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def is_ready(self) -> bool:
        return " ready." in self.log()


def start_worker(env_overrides: dict[str, str] | None = None, *, concurrency: int = 2) -> WorkerProcess:
    """Start a bare ``celery -A verify worker`` on the test database and wait until it consumes.

    No ``-Q``: the worker consumes the queues the settings declare, as one started by hand does.
    """
    return worker_wait_ready(worker_spawn(env_overrides, concurrency=concurrency))


def worker_spawn(env_overrides: dict[str, str] | None = None, *, concurrency: int = 2) -> WorkerProcess:
    """Start a worker as ``start_worker`` does, without waiting: start several, then wait for each."""
    env = {**os.environ, "DATABASE_URL": database_url(connections["default"].settings_dict)}
    env.update(env_overrides or {})
    log_path = Path(settings.VAR_DIR) / f"worker-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "verify", "worker", "-c", str(concurrency),
             "-l", "info", "--without-gossip", "--without-mingle", "-n", f"test-{uuid.uuid4().hex[:6]}@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return WorkerProcess(process=process, log_path=log_path, env=env)


def worker_wait_ready(worker: WorkerProcess) -> WorkerProcess:
    """Wait until a spawned worker consumes; stop it and raise if it does not start."""
    deadline = time.monotonic() + WORKER_START_TIMEOUT_S
    while not worker.is_ready():
        if worker.process.poll() is not None or time.monotonic() > deadline:
            stop_worker(worker)
            raise RuntimeError(f"the Celery worker did not start:\n{worker.log()[-3000:]}")
        time.sleep(0.05)
    return worker


def stop_worker(worker: WorkerProcess, *, graceful: bool = True) -> None:
    """Stop the worker and its pool children: a warm shutdown, or at once."""
    if worker.process.poll() is None:
        os.killpg(worker.process.pid, signal.SIGTERM if graceful else signal.SIGKILL)
        try:
            worker.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hasher() -> None:
    """Hash test users' passwords with MD5: PBKDF2's deliberate slowness is the bulk of setup time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def analysis_worker(django_db_setup: None, django_db_blocker: Any) -> Iterator[WorkerProcess]:
    """A real Celery worker on the real broker and the test database, for the whole session."""
    worker = start_worker()
    yield worker
    # Nothing of the session is left to hand back; a warm shutdown would only cost seconds.
    stop_worker(worker, graceful=False)


@pytest.fixture
def worker(analysis_worker: WorkerProcess, transactional_db: None) -> WorkerProcess:
    """The session worker, with data committed so that the worker process can see it."""
    if analysis_worker.process.poll() is not None:
        raise RuntimeError(f"the Celery worker died:\n{analysis_worker.log()[-3000:]}")
    return analysis_worker


def make_user(username: str, *roles: str, **extra: Any) -> Any:
    """Create a user with an API token and the given roles (analyst, reviewer, lead)."""
    user = get_user_model().objects.create_user(username=username, password=f"pw-{username}-1234", **extra)
    # Transactional tests flush every table, the role groups made by the data migration too.
    user.groups.set([Group.objects.get_or_create(name=role)[0] for role in roles])
    Token.objects.create(user=user)
    return user


def token_client(user: Any) -> APIClient:
    """Return a DRF test client that authenticates as user with their token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


@pytest.fixture
def analyst(db: None) -> Any:
    return make_user("analyst", "analyst")


@pytest.fixture
def api(analyst: Any) -> APIClient:
    return token_client(analyst)


@pytest.fixture(scope="session")
def footage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("footage")


@pytest.fixture(scope="session")
def shots_clip(footage_dir: Path) -> Path:
    """Four 2-second shots (cuts at 2, 4, 6 s), 320x240 H.264 + AAC, no metadata tags."""
    return media.shots_clip(footage_dir / "shots.mp4")


def submit(api: APIClient, path: Path, **fields: Any) -> Any:
    """POST a file to /api/v1/media/ as a multipart upload; return the response."""
    fields.setdefault("title", f"Claimed footage {path.name}")
    fields.setdefault("claim", "Shows what the post says it shows.")
    with path.open("rb") as handle:
        return api.post("/api/v1/media/", {"file": handle, **fields}, format="multipart")


@dataclass
class AnalysisOutcome:
    """What a polling script saw while waiting, and the item's detail at the end."""

    statuses: list[dict[str, Any]]
    detail: dict[str, Any]


def wait_for_analysis(api: APIClient, item_id: int, *, timeout_s: float = ANALYSIS_TIMEOUT_S) -> AnalysisOutcome:
    """Poll the status endpoint until the analysis finishes, like a script would."""
    statuses: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = api.get(f"/api/v1/media/{item_id}/status/")
        assert response.status_code == 200, response.content
        status = response.json()
        if not statuses or status != statuses[-1]:
            statuses.append(status)
        if status["state"] in ("succeeded", "failed"):
            detail = api.get(f"/api/v1/media/{item_id}/")
            assert detail.status_code == 200
            return AnalysisOutcome(statuses=statuses, detail=detail.json())
        time.sleep(0.1)
    raise AssertionError(f"analysis of media {item_id} did not finish in {timeout_s}s; saw {statuses}")


def analysed(api: APIClient, path: Path, **fields: Any) -> dict[str, Any]:
    """Submit a file, wait for its analysis to succeed, and return the media item's detail."""
    response = submit(api, path, **fields)
    assert response.status_code == 202, response.content
    detail = wait_for_analysis(api, response.json()["id"]).detail
    assert detail["state"] == "succeeded", detail["error"]
    return detail


def matches_of(api: APIClient, item_id: int) -> list[dict[str, Any]]:
    """Return ``GET /api/v1/media/{id}/matches/`` as the client sees it."""
    response = api.get(f"/api/v1/media/{item_id}/matches/")
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]
