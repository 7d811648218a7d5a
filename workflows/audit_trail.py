"""The stored audit trail as chained entries: what ``audit.jsonl`` holds and what the chain check reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workflows import audit_chain
from workflows.events import audit_event_content
from workflows.models import AuditEvent, Case


def audit_entries(*, case_id: int) -> Iterator[dict[str, Any]]:
    """Yield the case's events in chain order: id, hashes, the chained fields, and the actor's name.

    ``actor_username`` is for readers; it is not hashed (a user can be renamed).
    """
    events = AuditEvent.objects.filter(case_id=case_id).select_related("actor").order_by("id")
    for event in events.iterator(chunk_size=500):
        yield {
            "id": event.pk,
            **audit_event_content(event),
            "previous_hash": event.previous_hash,
            "entry_hash": event.entry_hash,
            "actor_username": event.actor.get_username() if event.actor is not None else None,
        }


def audit_chain_breaks(*, case_ids: Any = None) -> Iterator[audit_chain.ChainBreak]:
    """Yield, for each case whose chain is broken, the first event where it breaks."""
    cases = Case.objects.order_by("id").values_list("pk", flat=True)
    if case_ids is not None:
        cases = cases.filter(pk__in=case_ids)
    for case_id in cases.iterator():
        broken = audit_chain.chain_check(audit_entries(case_id=case_id))
        if broken is not None:
            yield broken
