"""Measure the analysis, OCR, the upload path, the status endpoint and search against the performance targets."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from verify import ffmpeg
from verify.derivatives import ffmpeg_version
from workflows.benchmark import analysis, e2e, ocr, package, photo, sandbox, search, status, web
from workflows.benchmark.clip import SMOKE_CLIP, ClipSpec, reference_clip_cached
from workflows.benchmark.report import Report, report_render

# "all" runs these; the analysis mode also times OCR on and off, which "ocr" runs alone.
MODES = ("analysis", "upload", "status", "photo", "package", "search", "e2e")
SIZES = ("1280x720", "1920x1080")
DEFAULT_POSTGRES_URL = "postgres://root@127.0.0.1:5432/postgres"
UPLOAD_BYTES = 2 * 1000**3
SMOKE_UPLOAD_BYTES = 64 * 1024**2


class Command(BaseCommand):
    help = (
        "Time the analysis against ffmpeg's own decoding on a generated reference clip, measure the web "
        "process during a large upload and the status endpoint under load, print a Markdown table, and "
        "exit 1 when a target is missed. Runs in a throwaway database and media root."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mode", choices=(*MODES, "ocr", "all"), default="analysis")
        parser.add_argument("--size", choices=SIZES, default="1280x720", help="Reference clip size.")
        parser.add_argument("--rounds", type=int, default=5, help="Interleaved rounds of each timing.")
        parser.add_argument(
            "--smoke",
            action="store_true",
            help="One round on a 12-second 320x240 clip, a 64 MiB upload, a 2-second load and a search over "
            "1,000 cases on SQLite; "
            "timing ratios are reported but not enforced.",
        )
        parser.add_argument("--cache-dir", type=Path, default=None, help="Where generated clips are kept.")
        parser.add_argument(
            "--postgres-url",
            default=os.environ.get("VERIFY_BENCHMARK_POSTGRES_URL", DEFAULT_POSTGRES_URL),
            help="Server for the status and search modes' throwaway database (created and dropped).",
        )
        parser.add_argument("--web-workers", type=int, default=4, help="gunicorn sync workers for the status mode.")
        parser.add_argument("--connections", type=int, default=8, help="Concurrent connections of the load.")
        parser.add_argument("--duration", type=float, default=10.0, help="Seconds of status load per round.")
        parser.add_argument("--max-requests", type=int, default=20000, help="Upper bound of status requests per round.")
        parser.add_argument(
            "--redis-url", default=e2e.DEFAULT_REDIS_URL, help="Redis for the e2e mode's second row (skipped if down)."
        )
        parser.add_argument(
            "--compare-poll-interval",
            type=float,
            default=None,
            help="e2e: also measure the embedded broker polling this often (seconds), interleaved.",
        )
        parser.add_argument("--sandboxed", type=Path, default=None, help="(internal) measure here, write JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["rounds"] < 1:
            raise CommandError("--rounds must be at least 1.")
        if options["sandboxed"] is not None:
            self._measure_in_sandbox(options)
            return
        modes = MODES if options["mode"] == "all" else (options["mode"],)
        smoke = options["smoke"]
        spec = SMOKE_CLIP if smoke else ClipSpec(size=options["size"])
        rounds = 1 if smoke else options["rounds"]
        cache_dir = options["cache_dir"] or Path(settings.VAR_DIR) / "benchmark"
        report = Report()
        report.context.append(
            f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python "
            f"{platform.python_version()}, ffmpeg {ffmpeg_version()}"
            + ("; smoke run: timing targets are reported, not enforced" if smoke else "")
        )
        clip, cached = self._clip(spec, cache_dir)
        report.context.append(f"reference clip: {clip} ({'cached' if cached else 'generated'})")
        for mode in modes:
            self.stderr.write(f"benchmark: measuring {mode} …")
            arguments = [
                "--mode", mode, "--size", options["size"], "--rounds", str(rounds), "--cache-dir", str(cache_dir),
                "--web-workers", str(options["web_workers"]), "--connections", str(options["connections"]),
                "--duration", str(options["duration"]), "--max-requests", str(options["max_requests"]),
                "--redis-url", options["redis_url"], *(["--smoke"] if smoke else []),
                *(["--compare-poll-interval", str(options["compare_poll_interval"])]
                  if options["compare_poll_interval"] is not None else []),
            ]  # fmt: skip
            try:
                if mode in ("status", "search") and not smoke:
                    with sandbox.postgres_database(options["postgres_url"]) as database_url:
                        report.extend(sandbox.sandbox_run(arguments, database_url=database_url))
                else:
                    report.extend(sandbox.sandbox_run(arguments))
            except (sandbox.SandboxError, OSError) as exc:
                raise CommandError(f"the {mode} benchmark could not run: {exc}") from exc
        command = "python3 manage.py benchmark " + " ".join(
            [f"--mode {options['mode']}"] + (["--smoke"] if smoke else [f"--size {spec.size}", f"--rounds {rounds}"])
        )
        self.stdout.write(report_render(report, title=f"`{command}`"))
        if report.missed:
            raise SystemExit(1)

    def _clip(self, spec: ClipSpec, cache_dir: Path) -> tuple[Path, bool]:
        try:
            clip, cached = reference_clip_cached(spec, cache_dir=cache_dir, ffmpeg_binary=settings.FFMPEG_BINARY)
        except ffmpeg.FFmpegError as exc:
            raise CommandError(f"ffmpeg could not generate the reference clip: {exc.stderr_tail.strip()}") from exc
        return clip, cached

    def _measure_in_sandbox(self, options: dict[str, Any]) -> None:
        if not sandbox.in_sandbox():
            raise CommandError("--sandboxed is internal: the benchmark runs it in a throwaway environment.")
        call_command("migrate", interactive=False, verbosity=0)
        smoke = options["smoke"]
        spec = SMOKE_CLIP if smoke else ClipSpec(size=options["size"])
        cache_dir = options["cache_dir"] or Path(settings.VAR_DIR) / "benchmark"
        clip, _ = self._clip(spec, cache_dir)
        small, _ = self._clip(SMOKE_CLIP, cache_dir)
        workdir = Path(settings.VAR_DIR)
        mode = options["mode"]
        if mode == "analysis":
            report = analysis.analysis_benchmark(
                clip, spec=spec, warm_up_clip=small, rounds=options["rounds"], enforce_timing=not smoke
            )
            report.extend(
                ocr.ocr_benchmark(clip, warm_up_clip=small, rounds=options["rounds"], enforce_timing=not smoke)
            )
        elif mode == "ocr":
            report = ocr.ocr_benchmark(clip, warm_up_clip=small, rounds=options["rounds"], enforce_timing=not smoke)
        elif mode == "search":
            report = search.search_benchmark(smoke=smoke, rounds=options["rounds"])
        elif mode == "photo":
            reference = photo.reference_photo(cache_dir / "photo-12mp.jpg")
            report = photo.photo_benchmark(reference, rounds=options["rounds"], enforce_timing=not smoke)
        elif mode == "upload":
            size_bytes = SMOKE_UPLOAD_BYTES if smoke else UPLOAD_BYTES
            report = web.upload_benchmark(head_clip=small, size_bytes=size_bytes, workdir=workdir)
        elif mode == "e2e":
            report = e2e.e2e_benchmark(
                clip, warm_up_clip=small, workdir=workdir, rounds=options["rounds"], redis_url=options["redis_url"],
                compare_poll_interval_s=options["compare_poll_interval"], enforce_timing=not smoke,
            )  # fmt: skip
        elif mode == "package":
            size_bytes = SMOKE_UPLOAD_BYTES if smoke else UPLOAD_BYTES
            report = package.package_benchmark(head_clip=small, size_bytes=size_bytes, workdir=workdir)
        else:
            report = status.status_benchmark(
                clip=small,
                workdir=workdir,
                web_workers=options["web_workers"],
                connections=options["connections"],
                duration_s=2.0 if smoke else options["duration"],
                rounds=options["rounds"],
                max_requests=options["max_requests"],
                enforce=not smoke,
                database=connection.vendor,
            )
        options["sandboxed"].write_text(report.to_json())
