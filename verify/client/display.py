"""What the client prints: label/value rows, analysis summaries and a progress display."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

PROGRESS_BAR_WIDTH = 30


# --- Output ----------------------------------------------------------------------------------


def print_fields(rows: list[tuple[str, str]], stream: TextIO | None = None) -> None:
    """Print label/value rows with the values lined up."""
    width = max((len(label) for label, _ in rows), default=0) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {value}", file=stream or sys.stdout)


def print_json(data: Any) -> None:
    """Print data as indented JSON."""
    print(json.dumps(data, indent=2, ensure_ascii=False))


def error_text(error: dict[str, Any] | None) -> str:
    return f"{error['code']}: {error['message']}" if error else "none"


def _source_note(source: str | None) -> str:
    return f" (from {source})" if source else ""


def analysis_summary(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the rows that summarise what the analysis of one media item found."""
    rows = [("state", detail["state"])]
    if detail.get("partial"):  # right under the state: the figures below are the container's promise
        rows.append(("partial", detail["partial"]))
    metadata = detail.get("metadata")
    if metadata:
        duration = metadata.get("duration_s")
        width, height = metadata.get("display_width"), metadata.get("display_height")
        created = metadata.get("creation_time")
        latitude, longitude = metadata.get("latitude"), metadata.get("longitude")
        created_text = "not recorded"
        if created:
            created_text = f"{created}{_source_note(metadata.get('creation_time_source'))}"
        location_text = "not recorded"
        if latitude is not None and longitude is not None:
            location_text = f"{latitude}, {longitude}{_source_note(metadata.get('location_source'))}"
        rows += [
            ("duration", f"{duration:.2f} s" if duration is not None else "unknown"),
            *_decoded_rows(metadata),
            ("resolution", f"{width}x{height}" if width and height else "unknown"),
            ("video codec", metadata.get("video_codec") or "none"),
            ("creation time", created_text),
            ("location", location_text),
        ]
    if detail["state"] == "succeeded" or detail.get("keyframes"):
        truncated = " (truncated)" if detail.get("keyframes_truncated") else ""
        rows += [
            ("keyframes", f"{len(detail.get('keyframes') or [])}{truncated}"),
            ("contact sheet", detail.get("contact_sheet_url") or "none"),
        ]
    if detail.get("error"):
        rows.append(("error", error_text(detail["error"])))
    return rows + post_rows(detail) + provenance_rows(detail)


def post_rows(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the rows that say which post a submitted link led to: where, who and when."""
    post = detail.get("source_post")
    if not post:
        return []
    author = post.get("author_name") or post.get("author_id") or "not given"
    if post.get("author_url"):
        author += f" <{post['author_url']}>"
    posted = "not given"
    if post.get("posted_at"):
        posted = f"{post['posted_at']}{_source_note(post.get('posted_at_source'))}"
    rows = [
        ("post", f"{post.get('canonical_url') or post.get('submitted_url')} ({post.get('platform') or 'unknown'})"),
        ("author", author),
        ("posted at", posted),
    ]
    if post.get("removed_at"):
        rows.append(("removed", f"{post['removed_at']}: {post.get('removed_message') or 'gone at a later fetch'}"))
    return rows


def byte_count(size: int) -> str:
    """Return a byte count the way a person reads it (kB, MB, GB)."""
    for unit, scale in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def fetch_text(status: dict[str, Any]) -> str:
    """Return how much of a link's media has been fetched, or "" when nothing is being fetched."""
    fetched, total = status.get("fetched_bytes"), status.get("fetch_total_bytes")
    if status.get("stage") != "fetching" or fetched is None:
        return ""
    return f"{byte_count(fetched)} of {byte_count(total)}" if total else f"{byte_count(fetched)} so far"


def _decoded_rows(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    decoded_s, frames = metadata.get("decoded_duration_s"), metadata.get("decoded_frame_count")
    if decoded_s is None and frames is None:
        return []  # nothing decoded: a photo, audio only, or an analysis that has not run
    parts = [f"{decoded_s:.2f} s" if decoded_s is not None else "", f"{frames} frames" if frames is not None else ""]
    errors = metadata.get("decode_error_count") or 0
    parts.append(f"{errors} decode error{'s' if errors != 1 else ''}")
    return [("decoded", ", ".join(part for part in parts if part))]


def provenance_rows(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the rows that say whether this footage reached the service before."""
    duplicate_of = detail.get("duplicate_of")
    rows = [("duplicate of", f"media {duplicate_of} (the same bytes)" if duplicate_of else "none")]
    seen_before = detail.get("seen_before")
    if not seen_before:  # not part of this answer (the upload's 202 does not carry it)
        return rows
    if not seen_before.get("seen"):
        return [*rows, ("seen before", "no")]
    for entry in seen_before.get("items") or []:
        case = entry.get("case") or {}
        verdict = case.get("verdict") or "no verdict yet"
        how = "the same bytes" if entry.get("exact") else f"{entry.get('similarity', 0):.0%} similar"
        mirrored = ", mirrored" if entry.get("mirrored") else ""
        rows.append(
            (
                "seen before",
                f'case {case.get("id")} "{case.get("title", "")}" ({verdict}): media {entry.get("media_item")}, '
                f"{how}, {entry.get('matched_frame_count', 0)} matched frames{mirrored}",
            )
        )
    return rows


class ProgressDisplay:
    """Show analysis progress on a stream: one redrawn line on a terminal, a line per stage elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self.last_stage: str | None = None
        self.last_fetch_step = -1
        self.drawn = False

    def update(self, status: dict[str, Any]) -> None:
        """Show one status answer."""
        percent = int(status.get("progress_percent") or 0)
        stage, state = status.get("stage", ""), status.get("state", "")
        fetched = fetch_text(status)
        if self.interactive:
            filled = PROGRESS_BAR_WIDTH * max(0, min(percent, 100)) // 100
            bar = "#" * filled + "-" * (PROGRESS_BAR_WIDTH - filled)
            self.stream.write(f"\r[{bar}] {percent:3d}%  {state}: {stage:<14}{fetched:<24}")
            self.drawn = True
        elif stage != self.last_stage:
            self.stream.write(f"{state}: {stage} ({percent}%)\n")
        if fetched and not self.interactive and self._fetch_step(status) != self.last_fetch_step:
            self.last_fetch_step = self._fetch_step(status)
            self.stream.write(f"fetched: {fetched}\n")
        self.last_stage = stage
        self.stream.flush()

    @staticmethod
    def _fetch_step(status: dict[str, Any]) -> int:
        # A line per quarter of the announced size, or per doubling when no size was announced.
        fetched, total = int(status.get("fetched_bytes") or 0), int(status.get("fetch_total_bytes") or 0)
        return 4 * fetched // total if total else fetched.bit_length()

    def close(self) -> None:
        """End the redrawn line so that later output starts on its own line."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
