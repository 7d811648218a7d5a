"""Run the upload → analysis → download path on S3 shared storage, as worker machines do.

moto's S3 server listens on loopback, so the web side (this process) and a real Celery worker
subprocess (configured only through the AWS_* environment, like a deployment) share one bucket
and nothing else: no local media directory between them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests import media
from tests.conftest import WorkerProcess, start_worker, stop_worker, submit, wait_for_analysis
from verify.celery import app as celery_app

pytestmark = pytest.mark.worker

BUCKET = "verify-media-test"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server on a free loopback port, with the bucket created."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3_client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def s3_environment(endpoint: str) -> dict[str, str]:
    """Return the environment a deployment sets to put media on S3 (see the README)."""
    return {
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": REGION,
        "AWS_ACCESS_KEY_ID": "verify-test",
        "AWS_SECRET_ACCESS_KEY": "verify-test-secret",
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }


def s3_client(endpoint: str) -> Any:
    env = s3_environment(endpoint)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


@contextmanager
def analysis_routed_to(queue: str) -> Iterator[None]:
    """Send analysis jobs from this process to queue, which only the S3 worker consumes.

    The session's local-storage worker consumes the usual queue and must never pick up an item
    whose original lives in the bucket.
    """
    previous = celery_app.conf.task_routes

    def route(routes: Any) -> None:
        celery_app.conf.task_routes = routes
        celery_app.amqp.flush_routes()
        celery_app.amqp.__dict__.pop("router", None)  # a cached_property holding the old table

    route({"verify.tasks.analysis_run_task": {"queue": queue}})
    try:
        yield
    finally:
        route(previous)


@pytest.fixture
def s3_worker(s3_endpoint: str, transactional_db: None, settings: Any, monkeypatch: Any) -> Iterator[WorkerProcess]:
    """S3 storage in this process and a worker configured for the same bucket on its own queue."""
    env = s3_environment(s3_endpoint)
    for name, value in env.items():
        if name != "AWS_STORAGE_BUCKET_NAME":
            monkeypatch.setenv(name, value)  # boto3 in this process reads credentials and checksum modes here
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": REGION,
                "file_overwrite": False,
                "default_acl": None,
                "querystring_auth": True,
            },
        },
    }
    queue = f"analysis-s3-{uuid.uuid4().hex[:8]}"
    settings.VERIFY_ANALYSIS_QUEUE = queue  # the worker declares it from its environment
    worker = start_worker({**env, "VERIFY_ANALYSIS_QUEUE": queue}, concurrency=1)
    try:
        with analysis_routed_to(queue):
            yield worker
    finally:
        stop_worker(worker)


def bucket_keys(endpoint: str, prefix: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def test_storage_s3_upload_analysis_and_downloads_use_the_bucket(
    api: Any, s3_worker: WorkerProcess, s3_endpoint: str, footage_dir: Path, settings: Any
):
    # given: a clip no other test submits (originals are content-addressed, so the local
    # storage of other tests must not already hold these bytes)
    shots_clip = media.shots_clip(footage_dir / "s3-shots.mp4", bitrate="450k")
    clip_bytes = shots_clip.read_bytes()
    sha256 = hashlib.sha256(clip_bytes).hexdigest()

    # when: a script uploads the clip and polls until the S3 worker has analysed it
    response = submit(api, shots_clip, title="Border village", claim="Filmed yesterday")
    assert response.status_code == 202, response.content
    item_id = response.json()["id"]
    outcome = wait_for_analysis(api, item_id)

    # then: the original is in the bucket under its hash, byte for byte, and not on local disk
    original_key = f"originals/{sha256[:2]}/{sha256}"
    stored = s3_client(s3_endpoint).get_object(Bucket=BUCKET, Key=original_key)["Body"].read()
    assert stored == clip_bytes
    assert not (Path(settings.MEDIA_ROOT) / original_key).exists()

    # and the worker, which shares nothing with this process but the bucket, analysed it
    detail = outcome.detail
    assert detail["state"] == "succeeded", (detail["error"], s3_worker.log()[-3000:])
    assert detail["metadata"]["duration_s"] == pytest.approx(8.0, abs=0.1)
    times = [k["timestamp_s"] for k in detail["keyframes"]]
    for cut in (2.0, 4.0, 6.0):
        assert any(cut <= t <= cut + 0.5 for t in times), times

    # and its keyframes and contact sheet were written to the bucket
    derived = bucket_keys(s3_endpoint, f"derived/{item_id}/")
    assert f"derived/{item_id}/contact-sheet.jpg" in derived
    assert len([key for key in derived if "/keyframe-" in key]) == len(detail["keyframes"])

    # and the API serves the files from the bucket
    sheet = api.get(f"/api/v1/media/{item_id}/contact-sheet/")
    assert sheet.status_code == 200
    assert sheet["Content-Type"] == "image/jpeg"
    assert b"".join(sheet.streaming_content)[:2] == b"\xff\xd8"
    original = api.get(f"/api/v1/media/{item_id}/original/")
    assert original.status_code == 200
    assert b"".join(original.streaming_content) == clip_bytes
