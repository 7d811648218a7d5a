"""The small views the desk's case page posts to.

Every change goes through workflows.services; a refusal (WorkflowError) or an invalid value
(ValidationError) comes back as an admin error message and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from verify import ocr
from workflows import selectors, services
from workflows.admin.forms import (
    AssignmentForm,
    ExportForm,
    LinkForm,
    NoteForm,
    NoteVersionForm,
    OcrLanguagesForm,
    TimeZoneForm,
    TransitionForm,
    checklist_forms,
)
from workflows.models import Case, Export, Note, Status
from workflows.services import keyframe_text
from workflows.services.exports import export_request


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
def case_export_view(request: HttpRequest, case_id: int) -> HttpResponse:
    """Ask for a report or evidence package of the case; it is made by a worker and listed on the page."""
    case = _visible_case(request, case_id)
    form = ExportForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
    else:
        kind, show_graphic = form.cleaned_data["kind"], form.cleaned_data["show_graphic"]
        _attempt(
            request,
            lambda: export_request(case=case, kind=kind, requested_by=request.user, show_graphic=show_graphic),
            f"{Export.Kind(kind).label} requested; it appears under Exports when it is ready.",
        )
    return HttpResponseRedirect(case_page_url(case, "exports"))


@require_POST
def case_link_view(request: HttpRequest, case_id: int) -> HttpResponse:
    """Add a link to the case: the worker fetches the post, as for a link sent to the API."""
    case = _visible_case(request, case_id)
    form = LinkForm(request.POST)
    if not selectors.user_roles(request.user):
        messages.error(request, "Your account has no role in this service; ask a lead to give you one.")
    elif not form.is_valid():
        messages.error(request, _form_errors(form))
    else:
        url, refetch = form.cleaned_data["url"], form.cleaned_data["refetch"]
        _attempt(
            request,
            lambda: services.case_media_submit(
                case=case, claim_fields={}, submitted_by=request.user, url=url, refetch=refetch
            ),
            "Link added; the worker fetches the post, then analyses it.",
        )
    return HttpResponseRedirect(case_page_url(case))


@require_POST
def case_ocr_languages_view(request: HttpRequest, case_id: int) -> HttpResponse:
    """Change the languages the case's keyframe text is read in, and read the stored keyframes again if asked."""
    case = _visible_case(request, case_id)
    form = OcrLanguagesForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return HttpResponseRedirect(case_page_url(case, "claim"))
    languages, reread = form.cleaned_data["ocr_languages"], form.cleaned_data["reread"]
    changed = _attempt(
        request,
        lambda: keyframe_text.case_ocr_languages_set(case=case, ocr_languages=languages, actor=request.user),
        f"Text in frames is now read in {ocr.languages_setting(languages) or 'the server default languages'}.",
    )
    if changed and reread:
        case.refresh_from_db()
        _attempt(
            request,
            lambda: keyframe_text.case_keyframe_text_reread(case=case, actor=request.user),
            "The worker reads the analysed keyframes again; their text changes when it is done.",
        )
    return HttpResponseRedirect(case_page_url(case, "claim"))


@require_POST
def time_zone_view(request: HttpRequest) -> HttpResponse:
    """Choose the zone the desk shows this user's times in."""
    form = TimeZoneForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
    else:
        zone = form.cleaned_data["time_zone"]
        services.reviewer_preference_set(user=request.user, time_zone=zone)
        messages.info(request, f"Times are now shown in {zone or settings.TIME_ZONE}.")
    return HttpResponseRedirect(reverse("admin:workflows_case_changelist"))


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
