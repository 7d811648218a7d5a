"""Check an evidence package offline: files against the manifest, timestamps, the audit chain.

Needs no database: only the ZIP, and optionally the TSA root certificates the reader trusts.
Each check adds a line to the report; any failure makes the package fail.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verify.timestamps import TimestampError, timestamp_verify
from workflows import audit_chain

_CHUNK_BYTES = 1024 * 1024


@dataclass
class PackageReport:
    """What the checks found: lines that passed, warnings, and failures."""

    passed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _member_hash(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with archive.open(name) as member:
        for chunk in iter(lambda: member.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_token(
    report: PackageReport, *, what: str, token: bytes, digest: bytes, chain_pem: str, trusted_ca_pem: str
) -> None:
    roots_from = "the given TSA root" if trusted_ca_pem else "the root certificates inside the package"
    try:
        when = timestamp_verify(response=token, digest=digest, certificates_pem=chain_pem + trusted_ca_pem)
    except TimestampError as exc:
        if not trusted_ca_pem and "no root" in str(exc):
            report.warnings.append(f"{what}: signature not checked, no TSA root given (--tsa-ca)")
            return
        report.failures.append(f"{what}: {exc}")
        return
    report.passed.append(f"{what}: timestamp of {when.isoformat()} verifies against {roots_from}")


def package_verify(path: Path, *, trusted_ca_pem: str = "") -> PackageReport:
    """Check the package at ``path``; return what passed and what failed."""
    report = PackageReport()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        report.failures.append(f"not a readable ZIP: {exc}")
        return report
    with archive:
        names = set(archive.namelist())
        if "manifest.json" not in names:
            report.failures.append("manifest.json is missing")
            return report
        manifest_bytes = archive.read("manifest.json")
        manifest = json.loads(manifest_bytes)
        _check_files(report, archive, manifest, names)
        _check_manifest_tokens(report, archive, manifest_bytes, names, trusted_ca_pem)
        _check_original_tokens(report, archive, manifest, trusted_ca_pem)
        _check_audit(report, archive, manifest, names)
    return report


def _check_files(report: PackageReport, archive: zipfile.ZipFile, manifest: dict[str, Any], names: set[str]) -> None:
    listed = {entry["path"] for entry in manifest["files"]}
    failures_before = len(report.failures)
    for entry in manifest["files"]:
        name = entry["path"]
        if name not in names:
            report.failures.append(f"{name}: listed in the manifest but missing")
            continue
        sha256, size = _member_hash(archive, name)
        if sha256 != entry["sha256"] or size != entry["size_bytes"]:
            report.failures.append(f"{name}: SHA-256 {sha256} ({size} bytes) does not match the manifest's")
        elif entry["kind"] == "original" and name.rsplit("/", 1)[-1] != sha256:
            report.failures.append(f"{name}: the original is not named by its SHA-256 {sha256}")
    unlisted = sorted(n for n in names - listed if not n.startswith("manifest.json") and not n.endswith("/"))
    for name in unlisted:
        report.failures.append(f"{name}: in the package but not in the manifest")
    if len(report.failures) == failures_before:
        report.passed.append(f"{len(listed)} files match the manifest's SHA-256 and size")


def _check_manifest_tokens(
    report: PackageReport, archive: zipfile.ZipFile, manifest_bytes: bytes, names: set[str], trusted_ca_pem: str
) -> None:
    tokens = sorted(n for n in names if n.startswith("manifest.json.tsa") and n.endswith(".tsr"))
    if not tokens:
        report.warnings.append("manifest.json has no timestamp")
    digest = hashlib.sha256(manifest_bytes).digest()
    for token_name in tokens:
        chain_name = token_name.removesuffix(".tsr") + "-certificates.pem"
        chain = archive.read(chain_name).decode() if chain_name in names else ""
        _check_token(
            report, what=token_name, token=archive.read(token_name), digest=digest, chain_pem=chain,
            trusted_ca_pem=trusted_ca_pem,
        )  # fmt: skip


def _check_original_tokens(
    report: PackageReport, archive: zipfile.ZipFile, manifest: dict[str, Any], trusted_ca_pem: str
) -> None:
    originals = {e["media_item"]: e["sha256"] for e in manifest["files"] if e["kind"] == "original"}
    for entry in manifest["files"]:
        if entry["kind"] != "timestamp":
            continue
        number = entry["path"].rsplit(".tsa", 1)[-1].removesuffix(".tsr")
        chain_name = f"timestamps/tsa{number}-certificates.pem"
        chain = archive.read(chain_name).decode() if chain_name in archive.namelist() else ""
        expected = originals.get(entry["media_item"]) or entry["digest_sha256"]
        _check_token(
            report, what=entry["path"], token=archive.read(entry["path"]), digest=bytes.fromhex(expected),
            chain_pem=chain, trusted_ca_pem=trusted_ca_pem,
        )  # fmt: skip
    for pending in manifest.get("pending_timestamps", []):
        report.warnings.append(f"media item {pending['media_item']}: timestamp by {pending['tsa_url']} was pending")


def _check_audit(report: PackageReport, archive: zipfile.ZipFile, manifest: dict[str, Any], names: set[str]) -> None:
    if "audit.jsonl" not in names:
        report.failures.append("audit.jsonl is missing")
        return
    lines = [json.loads(line) for line in archive.read("audit.jsonl").decode().splitlines() if line.strip()]
    broken = audit_chain.chain_check(lines)
    if broken is not None:
        report.failures.append(f"audit.jsonl: {broken}")
        return
    head = lines[-1]["entry_hash"] if lines else ""
    if head != manifest["audit"]["head_hash"]:
        report.failures.append("audit.jsonl: its last hash is not the manifest's audit.head_hash")
        return
    report.passed.append(f"audit.jsonl: {len(lines)} events, the hash chain holds up to {head[:16]}…")
