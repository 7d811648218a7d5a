"""Check the hash chain of every case's audit trail; name the first event where one breaks."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.audit_trail import audit_chain_breaks


class Command(BaseCommand):
    help = "Check the hash chain of every case's audit trail and name the first event where a chain breaks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--case", type=int, action="append", dest="cases", help="Check only this case (repeatable)."
        )

    def handle(self, *args: Any, cases: list[int] | None = None, **options: Any) -> None:
        breaks = list(audit_chain_breaks(case_ids=cases))
        for broken in breaks:
            self.stderr.write(str(broken))
        if breaks:
            raise CommandError(f"{len(breaks)} audit chain(s) broken.")
        self.stdout.write("Every audit chain holds.")
