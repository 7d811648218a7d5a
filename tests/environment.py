"""Give each test run its own var/ directory and queues, before Django reads its settings.

Loaded with ``-p tests.environment`` so it runs before pytest-django configures Django. The
worker processes the tests start inherit the same environment, so both sides agree on the
media root, the broker folder and the queue names.
"""

import os
import secrets
import shutil
import socket
import tempfile
import uuid

RUN_DIR = tempfile.mkdtemp(prefix="verify-test-")
_RUN_ID = uuid.uuid4().hex[:8]

os.environ["VERIFY_VAR_DIR"] = RUN_DIR
os.environ["MEDIA_ROOT"] = os.path.join(RUN_DIR, "media")
os.environ["VERIFY_BROKER_DIR"] = os.path.join(RUN_DIR, "broker")
os.environ["VERIFY_ANALYSIS_QUEUE"] = f"analysis-test-{_RUN_ID}"
os.environ["VERIFY_DEFAULT_QUEUE"] = f"celery-test-{_RUN_ID}"
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
os.environ.pop("AWS_STORAGE_BUCKET_NAME", None)
# OCR costs Tesseract time on every keyframe; the OCR tests turn it on where they need it.
os.environ["VERIFY_OCR_LANGUAGES"] = ""
# The one local address fetches may reach: the tests' own HTTP server (tests/fetch_server.py) binds it.
with socket.socket() as _probe:
    _probe.bind(("127.0.0.1", 0))
    FETCH_SERVER_PORT = _probe.getsockname()[1]
os.environ["VERIFY_FETCH_ALLOWED_ADDRESSES"] = f"127.0.0.1:{FETCH_SERVER_PORT}"
os.environ["VERIFY_FETCH_SERVER_PORT"] = str(FETCH_SERVER_PORT)


def pytest_report_header() -> str:
    database = os.environ.get("DATABASE_URL", "sqlite (embedded default)").split("@")[-1]
    broker = os.environ.get("CELERY_BROKER_URL", "filesystem:// (embedded default)").split("@")[-1]
    return f"verify: database {database}; broker {broker}; run dir {RUN_DIR}"


def pytest_unconfigure() -> None:
    if not os.environ.get("VERIFY_KEEP_TEST_DIR"):
        shutil.rmtree(RUN_DIR, ignore_errors=True)
