"""Measure the recycled-footage index: recall on planted near-duplicates and lookup latency."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from verify.similarity.hashes import index_benchmark


class Command(BaseCommand):
    help = (
        "Seed the keyframe-hash index with random PDQ hashes plus planted near-duplicates and print "
        "recall and per-keyframe lookup latency (p50/p95) as a table. Nothing touches the database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sizes", default="1000000", help="Comma-separated archive sizes in keyframe hashes (default 1000000)."
        )
        parser.add_argument("--queries", type=int, default=1000, help="Planted near-duplicates looked up per size.")
        parser.add_argument("--max-distance", type=int, default=None, help="Default: VERIFY_PDQ_MAX_DISTANCE.")
        parser.add_argument("--threads", type=int, default=None, help="Default: VERIFY_SIMILARITY_THREADS.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            sizes = [int(s) for s in options["sizes"].split(",") if s.strip()]
        except ValueError as exc:
            raise CommandError("--sizes takes whole numbers separated by commas") from exc
        queries = options["queries"]
        if not sizes or min(sizes) < queries or queries < 1:
            raise CommandError("every size must be at least --queries, and --queries at least 1")
        max_distance = options["max_distance"] or settings.VERIFY_PDQ_MAX_DISTANCE
        threads = options["threads"] or settings.VERIFY_SIMILARITY_THREADS
        header = ("hashes", "queries", "radius", "recall", "false hits", "p50 ms", "p95 ms", "max ms", "batch ms/q")
        self.stdout.write("| " + " | ".join(header) + " |")
        self.stdout.write("|" + "---:|" * len(header))
        for size in sizes:
            result = index_benchmark(
                size=size, queries=queries, max_distance=max_distance, threads=threads, seed=options["seed"]
            )
            row = (
                f"{result.size:,}",
                str(result.queries),
                f"≤{result.max_distance}",
                f"{result.recall:.1%}",
                str(result.false_hits),
                f"{result.p50_ms:.2f}",
                f"{result.p95_ms:.2f}",
                f"{result.max_ms:.2f}",
                f"{result.batch_ms_per_query:.2f}",
            )
            self.stdout.write("| " + " | ".join(row) + " |")
