"""Write operations on cases: every change to a case and its audit event, in one transaction.

One module per concern: ``cases`` (opening cases, submissions, analysis and integrity results,
downloads), ``review`` (moves, assignments, the checklist), ``notes``. The interfaces (API,
desk, receivers, commands) call the functions re-exported here.
"""

from workflows.services.cases import (
    case_create,
    case_integrity_failure_record,
    case_mark_ready_if_analysed,
    case_media_submit,
    original_download_record,
)
from workflows.services.notes import note_add, note_edit
from workflows.services.review import (
    allowed_moves_for,
    case_assign,
    case_assign_check_actor,
    case_transition,
    checklist_update,
    reviewer_preference_set,
)
from workflows.transitions import WorkflowError

__all__ = [
    "WorkflowError",
    "allowed_moves_for",
    "case_assign",
    "case_assign_check_actor",
    "case_create",
    "case_integrity_failure_record",
    "case_mark_ready_if_analysed",
    "case_media_submit",
    "case_transition",
    "checklist_update",
    "note_add",
    "note_edit",
    "original_download_record",
    "reviewer_preference_set",
]
