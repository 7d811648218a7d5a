"""Case reports and evidence packages, end to end: a closed case exported, checked offline, tampered with."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import time
import zipfile
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from pypdf import PdfReader

from tests.conftest import ROOT, make_user, submit, token_client, wait_for_analysis
from tests.tsa import LocalTsa
from tests.workflows_tests.test_admin_browser import CHROMEDRIVER, CHROMIUM, browser  # noqa: F401
from workflows.models import AuditEvent

ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [pytest.mark.worker, pytest.mark.timeout(600)]


@pytest.fixture
def tsa() -> Any:
    local = LocalTsa().start()
    yield local
    local.stop()


def export(client: Any, case_id: int, kind: str, **extra: Any) -> dict[str, Any]:
    """Ask for an export as a script would, poll it until it is made, and return its status."""
    response = client.post(f"/api/v1/cases/{case_id}/exports/", {"kind": kind, **extra}, format="json")
    assert response.status_code == 202, response.content
    status_url = response.json()["status_url"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = client.get(status_url).json()
        if status["state"] in ("succeeded", "failed"):
            assert status["state"] == "succeeded", status
            return status
        time.sleep(0.2)
    raise AssertionError(f"export not made: {status}")


def download(client: Any, status: dict[str, Any]) -> bytes:
    response = client.get(status["download_url"])
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert int(response["Content-Length"]) == len(body)
    return body


def verify_package(path: Path, *extra: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_package", str(path), *extra, stdout=out, stderr=err)
    except CommandError as failed:
        return "failed", out.getvalue() + err.getvalue() + str(failed)
    return "ok", out.getvalue()


def with_changed_byte(source: Path, target: Path, member: str, offset: int) -> None:
    """Copy a ZIP, flipping one byte of one member (stored, so the ZIP stays readable)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as copy:
        for info in original.infolist():
            data = bytearray(original.read(info.filename))
            if info.filename == member:
                data[offset] ^= 0x01
            copy.writestr(info, bytes(data))


def test_a_closed_case_exports_a_report_and_a_package_that_verify(worker, shots_clip, tsa, settings, tmp_path, browser):  # noqa: F811
    # given: a case with analysed footage, timestamped, reviewed and closed
    settings.VERIFY_TSA_URLS = [tsa.url]
    analyst, reviewer, lead = make_user("ana", "analyst"), make_user("rev", "reviewer"), make_user("lea", "lead")
    item = submit(token_client(analyst), shots_clip, title="Колонна у границы / قافلة عند الحدود").json()
    assert wait_for_analysis(token_client(analyst), item["id"]).detail["state"] == "succeeded"
    case_id = item["case"]
    rev, lea = token_client(reviewer), token_client(lead)
    deadline = time.monotonic() + 30
    while rev.get(f"/api/v1/media/{item['id']}/").json()["timestamps"][0]["state"] != "granted":
        assert time.monotonic() < deadline, "the original was not timestamped"
        time.sleep(0.2)
    for body in (
        {"to": "in_review"},
        {"to": "verdict_proposed", "verdict": "inconclusive", "rationale": "No earlier copy, no landmarks."},
    ):
        assert rev.post(f"/api/v1/cases/{case_id}/transitions/", body, format="json").status_code == 200
    assert lea.post(f"/api/v1/cases/{case_id}/transitions/", {"to": "closed"}, format="json").status_code == 200
    rev.post(f"/api/v1/cases/{case_id}/notes/", {"body": "First pass."}, format="json")

    # then: a user who may not see the case gets 404, from asking and from the exports themselves
    outsider = token_client(make_user("out", "analyst"))
    assert outsider.post(f"/api/v1/cases/{case_id}/exports/", {"kind": "package"}, format="json").status_code == 404

    # when: the lead exports the evidence package
    status = export(lea, case_id, "package")
    assert outsider.get(status["status_url"]).status_code == 404
    assert outsider.get(status["download_url"]).status_code == 404
    package = tmp_path / "package.zip"
    package.write_bytes(download(lea, status))

    # then: the original is in it byte for byte under its SHA-256, stored, and every listed hash is real
    original_name = f"originals/{item['sha256']}"
    with zipfile.ZipFile(package) as archive:
        assert archive.read(original_name) == shots_clip.read_bytes()
        assert archive.getinfo(original_name).compress_type == zipfile.ZIP_STORED
        manifest = json.loads(archive.read("manifest.json"))
        for entry in manifest["files"]:
            assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"], entry["path"]
        names = set(archive.namelist())
        assert {"audit.jsonl", "report.pdf", "README.txt", "manifest.json.tsa1.tsr"} <= names
        assert any(n.startswith("derived/media-") and n.endswith("contact-sheet.jpg") for n in names)
        archive.extract("manifest.json", tmp_path)
        archive.extract("manifest.json.tsa1.tsr", tmp_path)
    assert manifest["case"]["verdict"] == "inconclusive" and manifest["versions"]["ffmpeg"]
    assert manifest["audit"]["head_hash"]
    verified, output = verify_package(package, "--tsa-ca", str(tsa.ca_pem))
    assert verified == "ok", output
    assert "the hash chain holds" in output and "manifest.json.tsa1.tsr: timestamp of" in output
    # and the manifest's token verifies with openssl against the TSA's root
    openssl = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(tmp_path / "manifest.json"),
         "-in", str(tmp_path / "manifest.json.tsa1.tsr"), "-CAfile", str(tsa.ca_pem)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert openssl.returncode == 0 and "Verification: OK" in openssl.stdout, openssl.stderr

    # when: one byte of the original is changed inside the ZIP
    tampered = tmp_path / "tampered.zip"
    with_changed_byte(package, tampered, original_name, offset=1000)
    verified, output = verify_package(tampered, "--tsa-ca", str(tsa.ca_pem))
    # then: verification fails and names the original
    assert verified == "failed"
    assert f"FAILED  {original_name}: SHA-256" in output

    # when: the PDF report is made and read back
    pdf_status = export(lea, case_id, "report_pdf")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(download(lea, pdf_status))).pages)
    flat = "".join(text.split())
    # then: it names the case, the original's SHA-256 and the verdict, with page numbers
    assert "Колонна у границы" in text
    assert item["sha256"] in flat
    assert "Inconclusive" in text and "Page 1 of" in text

    # when: the HTML report is made with frames shown, and opened in a browser
    html_status = export(lea, case_id, "report_html", show_graphic=True)
    report = tmp_path / "report.html"
    report.write_bytes(download(lea, html_status))
    browser.get(report.as_uri())
    body = browser.find_element("tag name", "body").text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "case-report.png"))
    # then: the reader sees the case, the hash, the verdict and that frames were shown by choice
    assert "Колонна у границы" in body and item["sha256"] in body and "Inconclusive" in body
    assert "Frames are shown unblurred: lea chose to show them" in body

    # and: every generation and download is in the audit trail, and the chain holds
    events = AuditEvent.objects.filter(case_id=case_id)
    generated = list(events.filter(action="export_generated").order_by("id").values_list("after", flat=True))
    assert [e["kind"] for e in generated] == ["package", "report_pdf", "report_html"]
    assert [e["show_graphic"] for e in generated] == [False, False, True]
    assert generated[0]["sha256"] == hashlib.sha256((tmp_path / "manifest.json").read_bytes()).hexdigest()
    assert events.filter(action="export_downloaded").count() == 3
    call_command("verify_audit_chain", stdout=StringIO())


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_verify_package_names_an_edited_audit_line(tmp_path):
    # a minimal package: one audit line whose content was changed after hashing
    from workflows import audit_chain

    entry = {"id": 1, "case": 1, "actor": None, "action": "case_opened", "object_type": "case", "object_id": "1",
             "before": None, "after": {"title": "t"}, "created_at": "2026-01-01T00:00:00.000000+00:00",
             "previous_hash": audit_chain.GENESIS_HASH}  # fmt: skip
    entry["entry_hash"] = audit_chain.content_hash(entry)
    entry["after"] = {"title": "edited"}
    audit = (json.dumps(entry) + "\n").encode()
    manifest = {"files": [{"path": "audit.jsonl", "sha256": hashlib.sha256(audit).hexdigest(),
                           "size_bytes": len(audit), "kind": "audit"}],
                "audit": {"head_hash": entry["entry_hash"]}}  # fmt: skip
    package = tmp_path / "p.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        archive.writestr("audit.jsonl", audit)
    verified, output = verify_package(package)
    assert verified == "failed"
    assert "audit.jsonl: case 1: the audit chain breaks at event 1: its content does not match its hash" in output
