"""Re-hash stored originals and report (and flag) any that no longer match their SHA-256."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from verify.integrity import originals_verify


class Command(BaseCommand):
    help = (
        "Re-hash the stored originals and flag every media item whose original no longer matches the "
        "SHA-256 recorded at upload. Exits with status 1 if any does."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-hours",
            type=float,
            default=None,
            help="Only originals not checked within this many hours (default: all of them).",
        )

    def handle(self, *args: Any, older_than_hours: float | None, **options: Any) -> None:
        checked_before = None if older_than_hours is None else timezone.now() - timedelta(hours=older_than_hours)
        report = originals_verify(checked_before=checked_before)
        self.stdout.write(f"Checked {report.files_checked} stored originals ({report.items_checked} media items).")
        if report.mismatched_item_ids:
            ids = ", ".join(str(pk) for pk in report.mismatched_item_ids)
            raise CommandError(f"Originals that no longer match their SHA-256: media {ids}. Their cases are flagged.")
        self.stdout.write("All originals match their SHA-256.")
