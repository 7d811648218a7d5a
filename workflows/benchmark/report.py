"""The benchmark's results and the Markdown table a reader can paste into an issue."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field


@dataclass
class Timing:
    """One measured operation: its wall-clock time in every round."""

    name: str
    seconds: list[float]
    note: str = ""
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_cpu_s(self) -> float | None:
        return statistics.median(self.cpu_seconds) if self.cpu_seconds else None


@dataclass
class Check:
    """One target: what was measured against which limit, and whether it was met.

    ``met`` is None when the value is only reported (a smoke run does not hold timings of a
    tiny clip to the targets of the reference clip).
    """

    target: str
    what: str
    measured: str
    limit: str
    met: bool | None


@dataclass
class Report:
    """Everything one benchmark mode found."""

    context: list[str] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: Report) -> None:
        """Append another mode's results to this report."""
        self.context += other.context
        self.timings += other.timings
        self.checks += other.checks
        self.notes += other.notes

    @property
    def missed(self) -> list[Check]:
        return [check for check in self.checks if check.met is False]

    def to_json(self) -> str:
        """Return the report as JSON, for handing it out of the sandbox process."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Report:
        """Return the report that ``to_json`` wrote."""
        data = json.loads(text)
        return cls(
            context=list(data["context"]),
            timings=[Timing(**t) for t in data["timings"]],
            checks=[Check(**c) for c in data["checks"]],
            notes=list(data["notes"]),
        )


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.0f} ms"


def _result(met: bool | None) -> str:
    return {True: "met", False: "**MISSED**", None: "reported only"}[met]


def report_render(report: Report, *, title: str) -> str:
    """Return the report as Markdown: context lines, a timing table, a target table, a verdict."""
    lines = [f"### {title}", ""]
    lines += [f"- {line}" for line in report.context]
    if report.timings:
        lines += [
            "",
            "| measurement | median | min | max | median CPU time | rounds |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for timing in report.timings:
            if not timing.seconds:
                lines.append(f"| {timing.name} | {timing.note} | | | | 0 |")
                continue
            cpu = timing.median_cpu_s
            lines.append(
                f"| {timing.name} | {_seconds(timing.median_s)} | {_seconds(min(timing.seconds))} "
                f"| {_seconds(max(timing.seconds))} | {_seconds(cpu) if cpu is not None else ''} "
                f"| {len(timing.seconds)} |"
            )
    if report.checks:
        lines += ["", "| target | measured | limit | result |", "|---|---|---|---|"]
        lines += [f"| {c.target}. {c.what} | {c.measured} | {c.limit} | {_result(c.met)} |" for c in report.checks]
    if report.notes:
        lines.append("")
        lines += [f"- {note}" for note in report.notes]
    missed = report.missed
    verdict = (
        f"**{len(missed)} of {len(report.checks)} checks missed:** " + "; ".join(c.what for c in missed)
        if missed
        else f"All {sum(c.met is True for c in report.checks)} enforced checks met."
    )
    lines += ["", verdict]
    return "\n".join(lines)
