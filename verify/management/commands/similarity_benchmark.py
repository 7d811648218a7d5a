"""Measure the recycled-footage indexes: one clip's lookups at archive scale, recall and memory."""

import multiprocessing
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from verify.similarity.benchmark import INDEX_KINDS, index_benchmark


class Command(BaseCommand):
    help = (
        "Fill the dense-frame index with random PDQ hashes (and hashes of camera frames of real "
        "photographs), plant near copies and print, per archive size: build time, the time to look "
        "up one clip's hashes in one batch, recall, false hits and bytes per stored hash. Nothing "
        "touches the database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sizes", default="1000000", help="Comma-separated archive sizes in hashes.")
        parser.add_argument(
            "--queries", type=int, default=120, help="Hashes of one clip, looked up in one batch (default 120)."
        )
        parser.add_argument(
            "--max-distance", type=int, default=None, help="Default: VERIFY_PHOTO_MAX_DISTANCE, the dense lookups'."
        )
        parser.add_argument(
            "--index", default="multihash", help=f"Comma-separated, of {', '.join(INDEX_KINDS)} (default multihash)."
        )
        parser.add_argument(
            "--frames", type=int, default=2000, help="Camera frames in a second archive of each size (0: none)."
        )
        parser.add_argument("--threads", type=int, default=None, help="Default: VERIFY_SIMILARITY_THREADS.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            sizes = [int(s) for s in options["sizes"].split(",") if s.strip()]
        except ValueError as exc:
            raise CommandError("--sizes takes whole numbers separated by commas") from exc
        kinds = [k.strip() for k in options["index"].split(",") if k.strip()]
        if not kinds or set(kinds) - set(INDEX_KINDS):
            raise CommandError(f"--index takes {', '.join(INDEX_KINDS)}, separated by commas")
        queries, frames = options["queries"], options["frames"]
        if not sizes or min(sizes) < queries or queries < 1 or frames < 0:
            raise CommandError("every size must be at least --queries, --queries at least 1, --frames not negative")
        max_distance = options["max_distance"] or settings.VERIFY_PHOTO_MAX_DISTANCE
        threads = options["threads"] or settings.VERIFY_SIMILARITY_THREADS
        header = ("index", "data", "hashes", "queries", "radius", "build s", "build cpu s", "clip ms", "clip cpu ms",
                  "recall", "recall at radius", "false hits", "bytes/hash", "RSS bytes/hash")  # fmt: skip
        self.stdout.write("| " + " | ".join(header) + " |")
        self.stdout.write("|---|---|" + "---:|" * (len(header) - 2))
        for size in sizes:
            for kind in kinds:
                for data_frames in (0, frames) if frames else (0,):
                    arguments = {"kind": kind, "size": size, "queries": queries, "max_distance": max_distance,
                                 "frames": data_frames, "threads": threads, "seed": options["seed"]}  # fmt: skip
                    # Each run in a fresh child process, so its resident memory is its own.
                    with multiprocessing.get_context("fork").Pool(1) as pool:
                        run = pool.apply(index_benchmark, kwds=arguments)
                    row = (
                        run.kind,
                        run.data,
                        f"{run.size:,}",
                        str(run.queries),
                        f"≤{run.max_distance}",
                        f"{run.build_s:.1f}",
                        f"{run.build_cpu_s:.1f}",
                        f"{run.batch_ms:.1f}",
                        f"{run.batch_cpu_ms:.1f}",
                        f"{run.recall:.2%} of {run.planted:,}",
                        "–" if run.recall_at_radius is None else f"{run.recall_at_radius:.2%}",
                        str(run.false_hits),
                        f"{run.bytes_per_hash:.1f}",
                        f"{run.rss_bytes_per_hash:.1f}",
                    )
                    self.stdout.write("| " + " | ".join(row) + " |")
