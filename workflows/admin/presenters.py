"""What the reviewer's desk shows: the case page's context, metadata rows, note threads, history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from verify.models import Keyframe, MediaMetadata
from workflows import selectors, services, transitions
from workflows.admin import photo_panels, sun_panel
from workflows.admin.forms import AssignmentForm, NoteForm, TransitionForm, checklist_forms
from workflows.api.media.posts import post_signals
from workflows.match_evidence import MatchedFramePair
from workflows.models import AuditEvent, Case, Note, Status
from workflows.transitions import Move, Role

OSM_URL = "https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=15/{lat:.6f}/{lon:.6f}"

# --- reads for the desk ---------------------------------------------------------------------


def clock(seconds: float | None) -> str:
    """Return a moment in footage as m:ss.mmm (or h:mm:ss.mmm)."""
    if seconds is None:
        return ""
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{rest:06.3f}"
    return f"{minutes}:{rest:06.3f}"


def map_url(latitude: float | None, longitude: float | None) -> str:
    """Return an OpenStreetMap link centred on a position, or "" without one."""
    if latitude is None or longitude is None:
        return ""
    return OSM_URL.format(lat=latitude, lon=longitude)


@dataclass(frozen=True)
class MetadataRow:
    label: str
    value: str
    source: str = ""
    link: str = ""


def metadata_rows(metadata: MediaMetadata | None) -> list[MetadataRow]:
    """Return the metadata panel's rows; a value the file does not carry says so."""
    if metadata is None:
        return []
    m = metadata
    missing = "not recorded"
    resolution = missing
    if m.display_width and m.display_height:
        resolution = f"{m.display_width}×{m.display_height}"
        if (m.coded_width, m.coded_height) != (m.display_width, m.display_height):
            resolution += f" (stored {m.coded_width}×{m.coded_height})"
    location = missing
    if m.latitude is not None and m.longitude is not None:
        location = f"{m.latitude:.5f}, {m.longitude:.5f}"
        if m.altitude_m is not None:
            location += f", {m.altitude_m:.0f} m"
    device = " ".join(part for part in (m.device_make, m.device_model) if part) or missing
    if m.device_software:
        device += f" (software {m.device_software})"
    audio = m.audio_codec or "none"
    if m.audio_codec and m.audio_sample_rate_hz:
        audio += f", {m.audio_sample_rate_hz} Hz"
    if m.audio_codec and m.audio_channels:
        audio += f", {m.audio_channels} ch"
    return [
        MetadataRow(
            "Creation time",
            m.creation_time.isoformat() if m.creation_time else missing,
            source=m.creation_time_source,
        ),
        MetadataRow("Location", location, source=m.location_source, link=map_url(m.latitude, m.longitude)),
        MetadataRow("Device", device),
        MetadataRow("Encoder", m.encoder or missing),
        MetadataRow("Container", m.container_long_name or m.container or missing),
        MetadataRow("Video codec", m.video_codec or missing),
        MetadataRow("Audio", audio),
        MetadataRow("Resolution", resolution),
        MetadataRow("Rotation", f"{m.rotation_deg}°"),
        MetadataRow(
            "Duration",
            f"{m.duration_s:.2f} s ({clock(m.duration_s)})" if m.duration_s is not None else missing,
        ),
        MetadataRow(
            "Frames",
            " · ".join(
                part
                for part in (
                    f"{m.frame_rate_fps:g} fps" if m.frame_rate_fps else "",
                    f"{m.frame_count} frames" if m.frame_count else "",
                )
                if part
            )
            or missing,
        ),
        *_decoded_rows(m),
    ]


def _decoded_rows(m: MediaMetadata) -> list[MetadataRow]:
    if m.decoded_duration_s is None and m.decoded_frame_count is None:
        return []  # nothing decoded: a photo, audio only, or an analysis that has not run
    parts = [
        f"{m.decoded_duration_s:.2f} s" if m.decoded_duration_s is not None else "",
        f"{m.decoded_frame_count} frames" if m.decoded_frame_count is not None else "",
        f"{m.decode_error_count} decode error{'s' if m.decode_error_count != 1 else ''}",
    ]
    return [MetadataRow("Decoded", " · ".join(part for part in parts if part))]


def partial_signal(signals: list[dict[str, str]]) -> dict[str, str] | None:
    """Return the signal that says less decoded than the container declares, if there is one."""
    return next((signal for signal in signals if signal.get("code") == "partial"), None)


@dataclass(frozen=True)
class NoteThread:
    """A note as it reads now, with the versions it replaced, newest first."""

    current: Note
    earlier: list[Note]


def note_threads(notes: list[Note]) -> list[NoteThread]:
    """Group every version of every note into threads, in the order the notes were first written."""
    by_id = {note.pk: note for note in notes}
    replaced = {note.replaces_id for note in notes if note.replaces_id}
    threads = []
    for note in notes:
        if note.pk in replaced:
            continue
        earlier = []
        previous = by_id.get(note.replaces_id) if note.replaces_id else None
        while previous is not None:
            earlier.append(previous)
            previous = by_id.get(previous.replaces_id) if previous.replaces_id else None
        threads.append(NoteThread(current=note, earlier=earlier))
    return sorted(threads, key=lambda t: (t.earlier[-1] if t.earlier else t.current).created_at)


@dataclass(frozen=True)
class HistoryChange:
    field: str
    before: str | None  # None: no earlier value recorded, or it did not change
    after: str


def _shown(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def history_changes(event: AuditEvent) -> list[HistoryChange]:
    """Return what an audit event recorded, field by field, with the earlier value where there is one."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    changes = []
    for name in dict.fromkeys([*before, *after]):
        earlier = _shown(before[name]) if name in before else None
        later = _shown(after.get(name)) if name in after else "—"
        changes.append(HistoryChange(name, None if earlier == later else earlier, later))
    return changes


# --- the case page --------------------------------------------------------------------------


@dataclass(frozen=True)
class MoveButton:
    move: Move
    form: TransitionForm


def strip_pair(pair: MatchedFramePair) -> tuple[MatchedFramePair, str, str, str, str]:
    """Return a matched pair with its two times and, where a nearby keyframe stands in, the moments it shows."""

    def shows(keyframe: Keyframe | None, time_s: float) -> str:
        return clock(keyframe.timestamp_s) if keyframe and abs(keyframe.timestamp_s - time_s) > 0.0005 else ""

    return (
        pair,
        clock(pair.time_s),
        clock(pair.other_time_s),
        shows(pair.keyframe, pair.time_s),
        shows(pair.other_keyframe, pair.other_time_s),
    )


def case_desk_context(request: HttpRequest, case: Case) -> dict[str, Any]:
    """Return everything the case page shows besides the case's own fields."""
    user = request.user
    roles = selectors.user_roles(user)
    media_items = list(selectors.media_item_detail_for_user(user=user).filter(case=case).order_by("uploaded_at", "id"))
    in_case = {item.pk for item in media_items}
    media_entries = [
        {
            "item": item,
            "metadata": [
                *metadata_rows(getattr(item, "metadata", None)),
                *(MetadataRow(*row) for row in photo_panels.photo_rows(getattr(item, "metadata", None))),
            ],
            "signals": [s for s in photo_panels.signals_of(getattr(item, "metadata", None)) if s["code"] != "partial"],
            "partial": partial_signal(photo_panels.signals_of(getattr(item, "metadata", None))),
            "post_signals": post_signals(item) if item.source_post_id else [],
            "credentials": photo_panels.credentials_panel(item),
            "keyframes": [(keyframe, clock(keyframe.timestamp_s)) for keyframe in item.keyframes.all()],
            # A duplicate in another case is named by the seen-before banner, and only if visible.
            "duplicate_in_case": item.duplicate_of_id in in_case,
        }
        for item in media_items
    ]
    seen_before = selectors.case_seen_before_for_user(case=case, user=user)
    history = [
        (event, event.action.replace("_", " ").capitalize(), history_changes(event))
        for event in selectors.case_history(case=case)
    ]
    moves = [
        MoveButton(
            move,
            TransitionForm(auto_id=f"id_{move.name}_%s", initial={"to": move.target, "version": case.version}),
        )
        for move in services.allowed_moves_for(case=case, user=user)
    ]
    checklist_open = bool(roles & transitions.REVIEWERS) and case.status != Status.CLOSED
    return {
        "case": case,
        "media_entries": media_entries,
        "checklist": checklist_forms(case),
        "checklist_editable": checklist_open,
        "gated_keys": transitions.GATED_CHECKLIST_KEYS,
        "note_threads": note_threads(list(selectors.note_versions(case=case).select_related("media_item"))),
        "note_form": NoteForm(case=case),
        "moves": moves,
        "assignment_form": (
            AssignmentForm(initial={"version": case.version, "assignee": case.assignee_id})
            if Role.LEAD in roles and case.status != Status.CLOSED
            else None
        ),
        "assignments": list(case.assignments.select_related("assignee", "assigned_by")),
        "history": history,
        "exports": list(selectors.export_list_for_user(user=user).filter(case=case)),
        "reveal_keyframes": selectors.reviewer_reveals_keyframes(user=user),
        "seen_before": seen_before,
        "sun": sun_panel.case_sun_panel(case),
        "seen_before_entries": [(entry, [strip_pair(pair) for pair in entry.strip]) for entry in seen_before.entries],
    }
