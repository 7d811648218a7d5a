"""Check an evidence package offline: file hashes against its manifest, its timestamps, its audit chain."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.exports.verification import package_verify


class Command(BaseCommand):
    help = (
        "Check an evidence package offline: every file against manifest.json, the RFC 3161 timestamps "
        "of the manifest and the originals, and the audit chain. Exits 1 and names what failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("package", type=Path, help="The evidence package (ZIP).")
        parser.add_argument(
            "--tsa-ca", type=Path, help="PEM file of the TSA root certificate(s) you trust, obtained from the TSA."
        )

    def handle(self, *args: Any, package: Path, tsa_ca: Path | None = None, **options: Any) -> None:
        report = package_verify(package, trusted_ca_pem=tsa_ca.read_text() if tsa_ca else "")
        for line in report.passed:
            self.stdout.write(f"OK      {line}")
        for line in report.warnings:
            self.stdout.write(f"WARNING {line}")
        for line in report.failures:
            self.stderr.write(f"FAILED  {line}")
        if not report.ok:
            raise CommandError(f"{package.name}: {len(report.failures)} check(s) failed.")
        self.stdout.write(f"{package.name}: the package verifies.")
