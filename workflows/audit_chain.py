"""The hash chain of a case's audit trail: how an event is hashed, and how a chain is checked.

Each event stores ``entry_hash``, the SHA-256 of its canonical content, which includes the
``previous_hash`` of the event before it in the same case (64 zeros for the first). Changing,
removing or reordering any event breaks every hash after it. The content is written as
canonical JSON (sorted keys, no spaces, UTF-8) of the fields in ``CHAINED_FIELDS``; the
evidence package carries the same fields in ``audit.jsonl`` so that anyone can recompute the
chain without this service (docs/evidence-package.md).

The functions on plain dicts need no database, so the package verifier uses them offline.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
CHAINED_FIELDS = (
    "case",
    "actor",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "created_at",
    "previous_hash",
)


def chain_timestamp(moment: datetime) -> str:
    """Return how an event's time is written in its hashed content: UTC, ISO 8601, microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(value: Any) -> bytes:
    """Return the canonical JSON bytes of a value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def event_content(
    *,
    case_id: int,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
    created_at: datetime,
    previous_hash: str,
) -> dict[str, Any]:
    """Return the hashed content of one event, as a plain dict of ``CHAINED_FIELDS``."""
    return {
        "case": case_id,
        "actor": actor_id,
        "action": str(action),
        "object_type": object_type,
        "object_id": str(object_id),
        # Through JSON and back, so that what is hashed is what the JSON column gives back.
        "before": json.loads(json.dumps(before)),
        "after": json.loads(json.dumps(after)),
        "created_at": chain_timestamp(created_at),
        "previous_hash": previous_hash,
    }


def content_hash(content: Mapping[str, Any]) -> str:
    """Return the SHA-256 (hex) of an event's content, given its ``CHAINED_FIELDS``."""
    return hashlib.sha256(canonical_json({key: content[key] for key in CHAINED_FIELDS})).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """The first event of a case whose stored hashes do not hold, and why."""

    case_id: int
    event_id: Any
    reason: str

    def __str__(self) -> str:
        return f"case {self.case_id}: the audit chain breaks at event {self.event_id}: {self.reason}"


def chain_check(entries: Iterable[Mapping[str, Any]]) -> ChainBreak | None:
    """Check one case's events, in chain order; return the first break or None.

    Each entry holds ``id``, ``entry_hash`` and the ``CHAINED_FIELDS``.
    """
    expected_previous = GENESIS_HASH
    for entry in entries:
        if not entry.get("entry_hash"):
            return ChainBreak(entry["case"], entry["id"], "it has no hash")
        if entry["previous_hash"] != expected_previous:
            return ChainBreak(entry["case"], entry["id"], "it does not follow the event before it")
        if content_hash(entry) != entry["entry_hash"]:
            return ChainBreak(entry["case"], entry["id"], "its content does not match its hash")
        expected_previous = entry["entry_hash"]
    return None
