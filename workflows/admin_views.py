"""The reviewer's desk in the admin: what a case page shows, and the small views its forms post to.

Every change goes through workflows.services; a refusal (WorkflowError) or an invalid value
(ValidationError) comes back as an admin error message and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from verify.models import MediaItem, MediaMetadata
from workflows import selectors, services, transitions
from workflows.models import AuditEvent, Case, ChecklistItem, Note, Status, Verdict
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
    ]


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


# --- forms ----------------------------------------------------------------------------------


class TransitionForm(forms.Form):
    """One move: the verdict, rationale and note are checked by the service, not here."""

    to = forms.ChoiceField(choices=Status.choices, widget=forms.HiddenInput)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    verdict = forms.ChoiceField(choices=[("", "Choose a verdict…"), *Verdict.choices], required=False)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class MediaItemChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"#{obj.pk} {obj.original_filename or obj.sha256[:12]}"


class NoteForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Note")
    media_item = MediaItemChoiceField(queryset=MediaItem.objects.none(), required=False, label="About media")
    timestamp_s = forms.FloatField(required=False, label="At (s)", min_value=0)

    def __init__(self, *args: Any, case: Case, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        media_field = cast(forms.ModelChoiceField, self.fields["media_item"])  # type: ignore[type-arg]
        media_field.queryset = MediaItem.objects.filter(case=case).order_by("uploaded_at", "id")


class NoteVersionForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="New version")


class ChecklistItemForm(forms.Form):
    state = forms.ChoiceField(choices=ChecklistItem.State.choices)
    finding = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    latitude = forms.FloatField(required=False)
    longitude = forms.FloatField(required=False)


class AssignmentForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    assignee = forms.ModelChoiceField(queryset=get_user_model().objects.none(), label="Assign to")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["assignee"])  # type: ignore[type-arg]
        field.queryset = selectors.user_list_assignable()


def checklist_forms(case: Case, data: Any = None) -> list[tuple[ChecklistItem, ChecklistItemForm]]:
    """Return each checklist item in the order of the questions, with its form."""
    order = {key: index for index, key in enumerate(ChecklistItem.Key.values)}
    items = sorted(
        ChecklistItem.objects.filter(case=case).select_related("updated_by"),
        key=lambda item: order.get(item.key, len(order)),
    )
    return [
        (
            item,
            ChecklistItemForm(
                data,
                prefix=item.key,
                initial={
                    "state": item.state,
                    "finding": item.finding,
                    "latitude": item.latitude,
                    "longitude": item.longitude,
                },
            ),
        )
        for item in items
    ]


# --- the case page --------------------------------------------------------------------------


@dataclass(frozen=True)
class MoveButton:
    move: Move
    form: TransitionForm


def case_desk_context(request: HttpRequest, case: Case) -> dict[str, Any]:
    """Return everything the case page shows besides the case's own fields."""
    user = request.user
    roles = selectors.user_roles(user)
    media_items = list(selectors.media_item_detail_for_user(user=user).filter(case=case).order_by("uploaded_at", "id"))
    in_case = {item.pk for item in media_items}
    media_entries = [
        {
            "item": item,
            "metadata": metadata_rows(getattr(item, "metadata", None)),
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
        "reveal_keyframes": selectors.reviewer_reveals_keyframes(user=user),
        "seen_before": seen_before,
        "seen_before_entries": [
            (entry, [(pair, clock(pair.time_s), clock(pair.other_time_s)) for pair in entry.frame_pairs])
            for entry in seen_before.entries
        ],
    }


# --- the views the case page posts to -------------------------------------------------------


def _visible_case(request: HttpRequest, case_id: int) -> Case:
    return get_object_or_404(selectors.case_list_for_user(user=request.user), pk=case_id)


def case_page_url(case: Case, anchor: str = "") -> str:
    """Return the admin page of a case, optionally at one of its sections."""
    url = reverse("admin:workflows_case_change", args=[case.pk])
    return f"{url}#{anchor}" if anchor else url


def _form_errors(form: forms.Form) -> str:
    def label(name: str) -> str:
        field = form.fields.get(name)
        return str(field.label or name) if field is not None else name

    return "; ".join(f"{label(name)}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items())


def _attempt(request: HttpRequest, operation: Callable[[], Any], success: str) -> bool:
    """Run one service call; report a refusal or invalid value as an error message."""
    try:
        operation()
    except services.WorkflowError as refusal:
        message = refusal.message
        if "allowed_transitions" in refusal.extra:
            message += " The buttons on the case page are the moves you may make now."
        messages.error(request, message)
        return False
    except ValidationError as invalid:
        messages.error(request, " ".join(invalid.messages))
        return False
    messages.success(request, success)
    return True


def _stale_aware(case: Case, version: int | None) -> Case:
    # The page posts the version it was rendered from: if someone acted since, the service's
    # compare-and-swap refuses instead of applying this move to a case the reviewer never saw.
    if version is not None:
        case.version = version
    return case


@require_POST
def case_transition_view(request: HttpRequest, case_id: int) -> HttpResponse:
    """Make one move on a case (take, propose, approve, send back, reopen, hold, resume)."""
    case = _visible_case(request, case_id)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return HttpResponseRedirect(case_page_url(case))
    data = form.cleaned_data
    target = Status(data["to"]).label
    _attempt(
        request,
        lambda: services.case_transition(
            case=_stale_aware(case, data["version"]),
            to=data["to"],
            actor=request.user,
            verdict=data["verdict"],
            rationale=data["rationale"],
            note=data["note"],
        ),
        f"The case is now: {target}.",
    )
    return HttpResponseRedirect(case_page_url(case))


@require_POST
def case_note_view(request: HttpRequest, case_id: int) -> HttpResponse:
    """Add a note to a case."""
    case = _visible_case(request, case_id)
    form = NoteForm(request.POST, case=case)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
    else:
        data = form.cleaned_data
        _attempt(
            request,
            lambda: services.note_add(
                case=case,
                author=request.user,
                body=data["body"],
                media_item=data["media_item"],
                timestamp_s=data["timestamp_s"],
            ),
            "Note added.",
        )
    return HttpResponseRedirect(case_page_url(case, "notes"))


@require_POST
def case_note_version_view(request: HttpRequest, case_id: int, note_id: int) -> HttpResponse:
    """Write a new version of one of the case's notes; the old one stays readable."""
    case = _visible_case(request, case_id)
    note = get_object_or_404(Note.objects.filter(case=case), pk=note_id)
    form = NoteVersionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
    else:
        body = form.cleaned_data["body"]
        _attempt(
            request, lambda: services.note_edit(note=note, author=request.user, body=body), "New note version saved."
        )
    return HttpResponseRedirect(case_page_url(case, "notes"))


@require_POST
def case_checklist_view(request: HttpRequest, case_id: int) -> HttpResponse:
    """Save the checklist items whose state, finding or coordinates were changed."""
    case = _visible_case(request, case_id)
    changed = [(item, form) for item, form in checklist_forms(case, request.POST) if form.has_changed()]
    for item, form in changed:
        if not form.is_valid():
            messages.error(request, f"{item.key}: {_form_errors(form)}")
            continue
        data = form.cleaned_data
        coordinates = {}
        if {"latitude", "longitude"} & set(form.changed_data):
            coordinates = {"latitude": data["latitude"], "longitude": data["longitude"]}
        update = partial(
            services.checklist_update,
            case=case,
            key=item.key,
            actor=request.user,
            state=data["state"],
            finding=data["finding"],
            **coordinates,
        )
        _attempt(request, update, f"Checklist: {item.key} saved.")
    if not changed:
        messages.info(request, "The checklist was not changed.")
    return HttpResponseRedirect(case_page_url(case, "checklist"))


@require_POST
def case_assign_view(request: HttpRequest, case_id: int) -> HttpResponse:
    """Assign a reviewer to the case (the service lets only leads do so)."""
    case = _visible_case(request, case_id)
    form = AssignmentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
    else:
        data = form.cleaned_data
        _attempt(
            request,
            lambda: services.case_assign(
                case=_stale_aware(case, data["version"]), assignee=data["assignee"], actor=request.user
            ),
            f"Assigned to {data['assignee'].get_username()}.",
        )
    return HttpResponseRedirect(case_page_url(case))


@require_POST
def keyframe_preference_view(request: HttpRequest) -> HttpResponse:
    """Flip whether this reviewer sees keyframes unblurred, then go back to the page they were on."""
    reveal = not selectors.reviewer_reveals_keyframes(user=request.user)
    services.reviewer_preference_set(user=request.user, reveal_keyframes=reveal)
    messages.info(
        request, "Keyframes are now shown unblurred." if reveal else "Keyframes are now blurred until clicked."
    )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("admin:workflows_case_changelist")
    return HttpResponseRedirect(target)
