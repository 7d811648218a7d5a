"""Rebuild every case's search document, for cases made before the search existed or after a bulk import."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from workflows.search_index import case_search_documents_rebuild


class Command(BaseCommand):
    help = "Rebuild the search document (and on PostgreSQL its full-text vector) of every case."

    def handle(self, *args: Any, **options: Any) -> None:
        count = case_search_documents_rebuild()
        self.stdout.write(f"Rebuilt the search documents of {count} cases.")
