"""The review: moves between statuses, the two-person rule, assignments, the checklist, desk preferences."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from verify.errors import Refused
from workflows import events, transitions
from workflows.events import username as _username
from workflows.models import Assignment, Case, ChecklistItem, ReviewerPreference, Status, Verdict
from workflows.selectors import user_roles
from workflows.services.notes import note_create
from workflows.transitions import Move, Refusal, Role, WorkflowError


def allowed_moves_for(*, case: Case, user: Any) -> list[Move]:
    """Return the moves this user may make on this case now."""
    return transitions.moves_allowed(
        status=case.status,
        roles=user_roles(user),
        actor_id=user.pk,
        proposer_id=case.verdict_proposed_by_id,
        held_from=case.held_from,
    )


def _refuse(refusal: Refusal, *, case: Case, user: Any) -> WorkflowError:
    allowed = [{"to": m.target, "name": m.name, "title": m.label} for m in allowed_moves_for(case=case, user=user)]
    return WorkflowError(refusal.code, refusal.message, kind=refusal.kind, allowed_transitions=allowed)


def _checklist_gate(case: Case) -> None:
    unsettled = [
        item.key
        for item in case.checklist.filter(key__in=transitions.GATED_CHECKLIST_KEYS)
        if item.state == ChecklistItem.State.OPEN or not item.finding.strip()
    ]
    if unsettled:
        raise WorkflowError(
            "checklist_incomplete",
            "Before proposing this verdict, mark "
            + ", ".join(sorted(unsettled))
            + " as done or not applicable, with a finding.",
            checklist_items=sorted(unsettled),
        )


def case_transition(*, case: Case, to: str, actor: Any, verdict: str = "", rationale: str = "", note: str = "") -> Case:
    """Move a case to another status, if the table allows this person to; return it reloaded.

    Two people acting on the same case at once: the UPDATE only matches the version both
    read, so exactly one wins and the other gets a ``case_changed`` refusal.
    """
    checked = transitions.move_check(
        status=case.status,
        target=to,
        roles=user_roles(actor),
        actor_id=actor.pk,
        proposer_id=case.verdict_proposed_by_id,
        held_from=case.held_from,
        verdict=verdict,
        rationale=rationale,
        note=note,
    )
    if isinstance(checked, Refusal):
        raise _refuse(checked, case=case, user=actor)
    move = checked
    if move.name == "propose" and verdict != Verdict.INCONCLUSIVE:
        _checklist_gate(case)

    changes: dict[str, Any] = {"status": move.target}
    if move.name == "take" and case.assignee_id is None:
        changes["assignee"] = actor
    elif move.name == "propose":
        changes.update(verdict=verdict, verdict_rationale=rationale, verdict_proposed_by=actor)
    elif move.name == "approve":
        changes["verdict_approved_by"] = actor
    elif move.name in ("send_back", "reopen"):
        changes.update(verdict="", verdict_rationale="", verdict_proposed_by=None, verdict_approved_by=None)
    if move.name == "hold":
        changes["held_from"] = case.status
    elif move.name == "resume":
        changes["held_from"] = ""

    before = {"status": case.status, "verdict": case.verdict, "assignee": _username(case.assignee)}
    with transaction.atomic():
        won = Case.objects.filter(pk=case.pk, version=case.version).update(
            **changes, version=F("version") + 1, updated_at=timezone.now()
        )
        if not won:
            current = Case.objects.get(pk=case.pk)
            raise _refuse(
                Refusal(
                    "case_changed",
                    "Someone else changed this case just now; reload it and try again.",
                    Refused.CONFLICT,
                ),
                case=current,
                user=actor,
            )
        case.refresh_from_db()
        after = {"status": case.status, "verdict": case.verdict, "assignee": _username(case.assignee)}
        events.case_transitioned_event(
            case=case,
            actor=actor,
            before=before,
            after={**after, "move": move.name, **({"note": note} if note else {})},
        )
        if move.name == "propose":
            events.verdict_proposed_event(case=case, actor=actor, verdict=verdict, rationale=rationale)
        elif move.name == "approve":
            events.verdict_approved_event(case=case, actor=actor)
        if "assignee" in changes:
            _assignment_add(case=case, assignee=actor, actor=actor, previous=before["assignee"])
        if note:
            note_create(case=case, author=actor, body=f"{move.label}: {note}")
    return case


# --- assignments ----------------------------------------------------------------------------


def _assignment_add(*, case: Case, assignee: Any, actor: Any, previous: str | None) -> Assignment:
    assignment = Assignment.objects.create(case=case, assignee=assignee, assigned_by=actor)
    events.case_assigned_event(assignment=assignment, actor=actor, previous=previous)
    return assignment


def case_assign_check_actor(*, actor: Any) -> None:
    """Refuse anyone but a lead, before anything about the assignment is looked at."""
    if Role.LEAD not in user_roles(actor):
        raise WorkflowError(
            "forbidden", "Only a lead may assign cases. You are not a lead.", kind=Refused.NOT_PERMITTED
        )


def case_assign(*, case: Case, assignee: Any, actor: Any) -> Case:
    """Assign a reviewer to a case (leads only); a case ready for review goes into review."""
    case_assign_check_actor(actor=actor)
    if not user_roles(assignee) & transitions.REVIEWERS:
        raise WorkflowError(
            "not_a_reviewer", f"{assignee.get_username()} is not a reviewer or lead.", kind=Refused.INVALID
        )
    if case.status == Status.CLOSED:
        raise WorkflowError("case_closed", "A closed case cannot be assigned; reopen it first.")
    previous = _username(case.assignee)
    changes: dict[str, Any] = {"assignee": assignee}
    if case.status == Status.READY_FOR_REVIEW:
        changes["status"] = Status.IN_REVIEW
    with transaction.atomic():
        won = Case.objects.filter(pk=case.pk, version=case.version).update(
            **changes, version=F("version") + 1, updated_at=timezone.now()
        )
        if not won:
            raise WorkflowError("case_changed", "Someone else changed this case just now; reload it and try again.")
        before_status = case.status
        case.refresh_from_db()
        _assignment_add(case=case, assignee=assignee, actor=actor, previous=previous)
        if case.status != before_status:
            events.case_transitioned_event(
                case=case, actor=actor, before={"status": before_status}, after={"status": case.status}, move="assign"
            )
    return case


def checklist_update(
    *,
    case: Case,
    key: str,
    actor: Any,
    state: str | None = None,
    finding: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
) -> ChecklistItem:
    """Change a checklist item's state, finding or (for location) coordinates."""
    if not user_roles(actor) & transitions.REVIEWERS:
        raise WorkflowError("forbidden", "Only reviewers and leads work the checklist.", kind=Refused.NOT_PERMITTED)
    if case.status == Status.CLOSED:
        raise WorkflowError("case_closed", "The case is closed; a lead must reopen it before it can change.")
    item = ChecklistItem.objects.get(case=case, key=key)
    before = {"state": item.state, "finding": item.finding, "latitude": item.latitude, "longitude": item.longitude}
    if state is not None:
        item.state = state
    if finding is not None:
        item.finding = finding
    if latitude is not None or longitude is not None:
        if key != ChecklistItem.Key.LOCATION:
            raise ValidationError({"latitude": ["Only the location item has coordinates."]})
        if latitude is None or longitude is None:
            raise ValidationError({"latitude": ["Give both latitude and longitude."]})
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValidationError({"latitude": ["Latitude must be within ±90 and longitude within ±180."]})
        item.latitude, item.longitude = latitude, longitude
    item.updated_by = actor
    item.full_clean()
    with transaction.atomic():
        item.save()
        after = {"state": item.state, "finding": item.finding, "latitude": item.latitude, "longitude": item.longitude}
        events.checklist_changed_event(item=item, actor=actor, before=before, after=after)
    return item


# --- preferences ----------------------------------------------------------------------------


def reviewer_preference_set(
    *, user: Any, reveal_keyframes: bool | None = None, time_zone: str | None = None
) -> ReviewerPreference:
    """Choose whether keyframes show unblurred for this user, and the zone times are shown in ("": the service's)."""
    defaults: dict[str, Any] = {}
    if reveal_keyframes is not None:
        defaults["reveal_keyframes"] = reveal_keyframes
    if time_zone is not None:
        defaults["time_zone"] = time_zone
    preference, _ = ReviewerPreference.objects.get_or_create(user=user)
    for name, value in defaults.items():
        setattr(preference, name, value)
    preference.full_clean()
    preference.save()
    return preference
