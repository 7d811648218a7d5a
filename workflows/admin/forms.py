"""The desk's forms; values are checked again by workflows.services."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model

from verify import ocr
from verify.models import MediaItem
from workflows import selectors
from workflows.models import Case, ChecklistItem, Export, Status, Verdict
from workflows.time_zones import zone_names


class TransitionForm(forms.Form):
    """One move: the verdict, rationale and note are checked by the service, not here."""

    to = forms.ChoiceField(choices=Status.choices, widget=forms.HiddenInput)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    verdict = forms.ChoiceField(choices=[("", "Choose a verdict…"), *Verdict.choices], required=False)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class MediaItemChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"#{obj.pk} {obj.original_filename or (obj.sha256 or 'a link')[:12]}"


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


class ExportForm(forms.Form):
    kind = forms.ChoiceField(choices=Export.Kind.choices, label="Format")
    show_graphic = forms.BooleanField(required=False, label="Show graphic frames (unblurred keyframes)")


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(label="Show times in", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ChoiceField, self.fields["time_zone"])
        field.choices = [("", f"{settings.TIME_ZONE} (the service's zone)"), *((n, n) for n in zone_names())]


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


class LinkForm(forms.Form):
    """A post or media URL to fetch into the case, as the API's ``url``."""

    url = forms.URLField(max_length=2000, assume_scheme="https", label="Link to a post or media file")
    refetch = forms.BooleanField(required=False, label="Fetch again even if fetched before")


class OcrLanguagesForm(forms.Form):
    """The languages a case's keyframe text is read in, checked against the installed Tesseract data."""

    ocr_languages = forms.CharField(
        max_length=100, required=False, validators=[ocr.languages_validate], label="Read text in frames in"
    )
    reread = forms.BooleanField(required=False, label="and read the analysed keyframes again")
