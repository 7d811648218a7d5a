"""Write the reference multi-shot clip used in the README walkthrough and the benchmark."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from verify import ffmpeg


class Command(BaseCommand):
    help = "Generate a multi-shot H.264 clip from ffmpeg's lavfi sources and print its cut times."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", type=Path)
        parser.add_argument("--shots", type=int, default=8)
        parser.add_argument("--shot-seconds", type=float, default=15.0)
        parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT, e.g. 1920x1080")
        parser.add_argument("--fps", type=int, default=30)

    def handle(self, *args: Any, output: Path, shots: int, shot_seconds: float, size: str, fps: int, **o: Any) -> None:
        if shots < 1 or shot_seconds <= 0:
            raise CommandError("--shots must be at least 1 and --shot-seconds positive.")
        argv = ffmpeg.reference_clip_argv(
            output.resolve(), ffmpeg=settings.FFMPEG_BINARY, shots=shots, shot_s=shot_seconds, size=size, fps=fps
        )
        try:
            ffmpeg.run(argv, timeout_s=3600)
        except ffmpeg.FFmpegError as exc:
            raise CommandError(f"ffmpeg failed: {exc.stderr_tail.strip()}") from exc
        cuts = ", ".join(f"{i * shot_seconds:g}" for i in range(1, shots))
        self.stdout.write(f"Wrote {output} ({shots} shots of {shot_seconds:g} s, {size} at {fps} fps).")
        self.stdout.write(f"Hard cuts at (s): {cuts}")
