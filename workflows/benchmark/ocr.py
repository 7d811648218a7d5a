"""Time the full analysis of the reference clip with the text-in-frames stage on and off, interleaved.

Two pool children (see ``workflows.benchmark.analysis``), forked with OCR on and with it off,
analyse the clip in turns, first and second alternating from round to round; the check takes
the median of the rounds' ratios.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from django.conf import settings
from django.test import override_settings

from verify.models import KeyframeText, MediaItem
from workflows.benchmark.analysis import AnalysisRound, PoolChild, analysis_round
from workflows.benchmark.report import Check, Report, Timing
from workflows.benchmark.sandbox import sandbox_user

OCR_RATIO_LIMIT = 1.2
# Read with these when the environment turned OCR off (as the test environment does).
FALLBACK_LANGUAGES = "eng+ukr+rus+ara"


def _child(languages: str) -> PoolChild:
    with override_settings(VERIFY_OCR_LANGUAGES=languages):
        return PoolChild()  # forked now: the child keeps this setting


def ocr_benchmark(clip: Path, *, warm_up_clip: Path, rounds: int, enforce_timing: bool) -> Report:
    """Time ``analysis_run`` (mode full) of the clip with OCR on and off; report the ratio."""
    user, _ = sandbox_user("benchmark-ocr")
    languages = settings.VERIFY_OCR_LANGUAGES or FALLBACK_LANGUAGES
    with_ocr: list[AnalysisRound] = []
    without: list[AnalysisRound] = []
    on_child, off_child = _child(languages), _child("")
    try:
        for child in (on_child, off_child):
            analysis_round(warm_up_clip, child=child, user=user, mode=MediaItem.Mode.FULL)
        for round_index in range(rounds):
            steps = [(on_child, with_ocr), (off_child, without)]
            for child, runs in steps if round_index % 2 == 0 else steps[::-1]:
                runs.append(analysis_round(clip, child=child, user=user, mode=MediaItem.Mode.FULL))
    finally:
        on_child.close()
        off_child.close()
    failed = [r for r in with_ocr + without if r.state != MediaItem.State.SUCCEEDED]
    if failed:
        raise RuntimeError(f"an analysis did not succeed: {failed[0].state} {failed[0].error}")
    ratio = statistics.median(on.seconds / off.seconds for on, off in zip(with_ocr, without, strict=True))
    report = Report()
    report.timings += [
        Timing(f"full analysis, OCR on ({languages})", [r.seconds for r in with_ocr],
               cpu_seconds=[r.cpu_seconds for r in with_ocr]),
        Timing("full analysis, OCR off", [r.seconds for r in without], cpu_seconds=[r.cpu_seconds for r in without]),
    ]  # fmt: skip
    report.checks.append(
        Check("6", "full analysis with OCR ÷ without (median of the rounds' ratios)", f"{ratio:.2f}×",
              f"≤ {OCR_RATIO_LIMIT}×", (ratio <= OCR_RATIO_LIMIT) if enforce_timing else None)
    )  # fmt: skip
    frames = len(with_ocr[-1].keyframes)
    texts = KeyframeText.objects.filter(media_item__uploaded_by=user).count()
    report.notes.append(
        f"OCR read {frames} keyframes per analysis; {texts} keyframe text rows in all rounds "
        "(the reference clip shows test patterns, not text)"
    )
    return report
