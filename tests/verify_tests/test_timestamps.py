"""Trusted timestamps of originals: asked of the configured TSA after intake, pending while it is down."""

import hashlib
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import submit, wait_for_analysis
from tests.ports import free_port
from tests.tsa import LocalTsa
from verify import jobs
from verify.models import Timestamp
from verify.timestamps import TimestampError, timestamp_request_der, timestamp_verify, tsa_ask


def wait_for_timestamp(api, item_id: int, state: str, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stamps = api.get(f"/api/v1/media/{item_id}/").json()["timestamps"]
        if stamps and all(stamp["state"] == state for stamp in stamps):
            return stamps[0]
        time.sleep(0.2)
    raise AssertionError(f"timestamp of media {item_id} not {state} after {timeout_s}s: {stamps}")


@pytest.mark.worker
def test_a_tsa_down_at_ingest_leaves_the_timestamp_pending_then_it_is_granted(
    worker, api, shots_clip, settings, tmp_path
):
    # given: a TSA configured, but not running yet
    tsa = LocalTsa(port=free_port())
    settings.VERIFY_TSA_URLS = [tsa.url]
    # when: an original is submitted
    item = submit(api, shots_clip).json()
    # then: the analysis is not held up, and the timestamp says it is pending with why
    assert wait_for_analysis(api, item["id"]).detail["state"] == "succeeded"
    pending = wait_for_timestamp(api, item["id"], "pending")
    deadline = time.monotonic() + 20
    while not pending["attempts"] and time.monotonic() < deadline:
        time.sleep(0.2)
        pending = wait_for_timestamp(api, item["id"], "pending")
    assert pending["state_display"] == "Timestamp pending"
    assert "did not answer" in pending["last_error"]
    # when: the TSA is up and the retry comes due (the reconciler's pass, run as if an hour later)
    tsa.start()
    try:
        assert jobs.timestamps_due_enqueue(now=timezone.now() + timedelta(hours=2)) >= 1
        granted = wait_for_timestamp(api, item["id"], "granted")
    finally:
        tsa.stop()
    # then: the stored answer timestamps the original's SHA-256, and openssl verifies it with the TSA's root
    assert granted["digest_sha256"] == item["sha256"] == hashlib.sha256(shots_clip.read_bytes()).hexdigest()
    assert granted["gen_time"] and granted["last_error"] == ""
    row = Timestamp.objects.get(media_item_id=item["id"])
    (tmp_path / "original.tsr").write_bytes(bytes(row.response))
    verified = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(shots_clip), "-in", str(tmp_path / "original.tsr"),
         "-CAfile", str(tsa.ca_pem)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stderr
    assert row.certificates_pem.startswith("-----BEGIN CERTIFICATE-----")


def test_a_timestamp_of_other_bytes_does_not_verify():
    tsa = LocalTsa().start()
    try:
        answer = tsa_ask(url=tsa.url, digest=hashlib.sha256(b"original").digest())
    finally:
        tsa.stop()
    chain = answer.certificates_pem + tsa.ca_pem.read_text()
    assert timestamp_verify(
        response=answer.response, digest=hashlib.sha256(b"original").digest(), certificates_pem=chain
    )
    with pytest.raises(TimestampError, match="does not verify"):
        timestamp_verify(response=answer.response, digest=hashlib.sha256(b"0riginal").digest(), certificates_pem=chain)


def test_the_request_is_what_openssl_builds_for_the_same_digest(tmp_path):
    # openssl ts -query -digest writes the same TimeStampReq, nonce aside
    digest = hashlib.sha256(b"x").digest()
    subprocess.run(
        ["openssl", "ts", "-query", "-digest", digest.hex(), "-sha256", "-no_nonce", "-cert",
         "-out", str(tmp_path / "q.tsq")],
        check=True, capture_output=True,
    )  # fmt: skip
    ours = timestamp_request_der(digest=digest, nonce=1)
    expected = (tmp_path / "q.tsq").read_bytes()
    # the same request with our nonce (INTEGER 1) inserted before certReq
    assert ours.replace(b"\x02\x01\x01\x01\x01\xff", b"\x01\x01\xff")[2:] == expected[2:]
