"""The review workflow's allowed moves and who may make them: one table, no I/O.

A move is addressed by the status it starts from and the status it goes to. The checks here
look only at the values they are given; workflows.services applies them and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from verify.errors import DomainError, Refused
from workflows.models import Status, Verdict


class Role(StrEnum):
    ANALYST = "analyst"
    REVIEWER = "reviewer"
    LEAD = "lead"


REVIEWERS = frozenset({Role.REVIEWER, Role.LEAD})
LEADS = frozenset({Role.LEAD})
OPEN_STATUSES = (Status.NEW, Status.READY_FOR_REVIEW, Status.IN_REVIEW, Status.VERDICT_PROPOSED)


@dataclass(frozen=True)
class Move:
    """One allowed move: its name, from where to where, who may make it and what it needs."""

    name: str
    source: Status
    target: Status
    roles: frozenset[Role]
    needs_verdict: bool = False
    needs_note: bool = False
    not_by_proposer: bool = False
    label: str = ""


def _hold_moves() -> list[Move]:
    moves = []
    for status in OPEN_STATUSES:
        moves.append(Move("hold", status, Status.ON_HOLD, REVIEWERS, needs_note=True, label="Put on hold"))
        moves.append(Move("resume", Status.ON_HOLD, status, REVIEWERS, label="Resume"))
    return moves


MOVES: tuple[Move, ...] = (
    Move("take", Status.READY_FOR_REVIEW, Status.IN_REVIEW, REVIEWERS, label="Take for review"),
    Move("propose", Status.IN_REVIEW, Status.VERDICT_PROPOSED, REVIEWERS, needs_verdict=True, label="Propose verdict"),
    Move("approve", Status.VERDICT_PROPOSED, Status.CLOSED, REVIEWERS, not_by_proposer=True, label="Approve verdict"),
    Move(
        "send_back",
        Status.VERDICT_PROPOSED,
        Status.IN_REVIEW,
        REVIEWERS,
        needs_note=True,
        not_by_proposer=True,
        label="Send back",
    ),
    Move("reopen", Status.CLOSED, Status.IN_REVIEW, LEADS, needs_note=True, label="Reopen"),
    *_hold_moves(),
)

# Checklist items that must be settled (done, or not applicable with a finding) before a
# verdict other than inconclusive can be proposed.
GATED_CHECKLIST_KEYS = ("provenance", "date", "location")


def moves_from(status: str, *, held_from: str = "") -> list[Move]:
    """Return the moves that exist from a status (an on-hold case may only go back)."""
    return [
        m for m in MOVES if m.source == status and (status != Status.ON_HOLD or not held_from or m.target == held_from)
    ]


class WorkflowError(DomainError):
    """A refused workflow operation: code, message, kind of refusal, extra fields."""


@dataclass(frozen=True)
class Refusal:
    """Why a move is refused: a machine-readable code, a message and the kind of refusal."""

    code: str
    message: str
    kind: Refused


def move_check(
    *,
    status: str,
    target: str,
    roles: frozenset[Role],
    actor_id: int,
    proposer_id: int | None,
    held_from: str = "",
    verdict: str = "",
    rationale: str = "",
    note: str = "",
) -> Move | Refusal:
    """Return the move to make, or why it may not be made."""
    move = next((m for m in moves_from(status, held_from=held_from) if m.target == target), None)
    if move is None:
        return Refusal("illegal_transition", f"A case that is {status} cannot move to {target}.", Refused.CONFLICT)
    if not move.roles & roles:
        allowed = " or ".join(sorted(move.roles))
        return Refusal("forbidden_transition", f"Only a {allowed} may {move.label.lower()}.", Refused.NOT_PERMITTED)
    if move.not_by_proposer and proposer_id == actor_id:
        return Refusal(
            "second_person_required",
            "The verdict must be approved or sent back by someone other than its proposer.",
            Refused.NOT_PERMITTED,
        )
    if move.needs_verdict:
        if verdict not in Verdict.values:
            return Refusal("verdict_required", f"Choose a verdict: {', '.join(Verdict.values)}.", Refused.INVALID)
        if not rationale.strip():
            return Refusal("rationale_required", "A proposed verdict needs a rationale.", Refused.INVALID)
    if move.needs_note and not note.strip():
        return Refusal("note_required", f"{move.label} needs a note saying why.", Refused.INVALID)
    return move


def moves_allowed(
    *, status: str, roles: frozenset[Role], actor_id: int, proposer_id: int | None, held_from: str = ""
) -> list[Move]:
    """Return the moves this person may make now (before any verdict or note is written)."""
    return [
        m
        for m in moves_from(status, held_from=held_from)
        if m.roles & roles and not (m.not_by_proposer and proposer_id == actor_id)
    ]


@dataclass(frozen=True)
class EvidenceMove:
    """What new media does to a case in some status: where it goes and the reason the history gives."""

    target: Status
    reason: str


_EVIDENCE_MOVES: dict[str, EvidenceMove] = {
    Status.READY_FOR_REVIEW: EvidenceMove(
        Status.NEW, "New media was submitted; the case is ready for review again once it is analysed."
    ),
    Status.VERDICT_PROPOSED: EvidenceMove(
        Status.IN_REVIEW,
        "New media was submitted after a verdict was proposed; the proposal is withdrawn and the case "
        "is back in review so that the new evidence is weighed.",
    ),
}

CASE_CLOSED_REFUSAL = Refusal(
    "case_closed", "The case is closed and takes no new media; a lead must reopen it first.", Refused.CONFLICT
)


def evidence_check(*, status: str) -> EvidenceMove | Refusal | None:
    """Return where new media moves a case in this status, why it is refused, or None if it stays."""
    if status == Status.CLOSED:
        return CASE_CLOSED_REFUSAL
    return _EVIDENCE_MOVES.get(status)
