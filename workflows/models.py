"""Cases and their review: status, verdict, checklist, notes, assignments and the audit trail."""

import zoneinfo
from typing import Any, NoReturn

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from verify.ocr import languages_validate


class Status(models.TextChoices):
    NEW = "new", "New (analysis running)"
    READY_FOR_REVIEW = "ready_for_review", "Ready for review"
    IN_REVIEW = "in_review", "In review"
    VERDICT_PROPOSED = "verdict_proposed", "Verdict proposed"
    CLOSED = "closed", "Closed"
    ON_HOLD = "on_hold", "On hold"


class Verdict(models.TextChoices):
    AUTHENTIC = "authentic", "Authentic: the footage shows what is claimed"
    MISATTRIBUTED = "misattributed", "Misattributed: real footage, wrong place, time or context"
    MANIPULATED = "manipulated", "Manipulated: edited, staged or synthetic"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class Case(models.Model):
    """A claim about footage: what it is said to show, where, when, and where it was posted."""

    Status = Status
    Verdict = Verdict

    title = models.CharField(max_length=300)
    claim = models.TextField(help_text="What the footage is said to show.")
    source_url = models.URLField(max_length=2000, blank=True, help_text="Where the footage was posted.")
    claimed_location = models.CharField(max_length=300, blank=True)
    claimed_date = models.DateField(null=True, blank=True)
    ocr_languages = models.CharField(
        "OCR languages",
        max_length=100,
        blank=True,
        validators=[languages_validate],
        help_text='Tesseract languages for keyframe text, joined by "+" (eng+ukr); empty: the server default.',
    )
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.NEW, db_index=True)
    held_from = models.CharField(
        max_length=30, choices=Status.choices, blank=True, help_text="The status an on-hold case returns to."
    )
    verdict = models.CharField(max_length=20, choices=Verdict.choices, blank=True, db_index=True)
    verdict_rationale = models.TextField(blank=True)
    verdict_proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verdict_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_cases",
        help_text="The reviewer working the case now.",
    )
    # Bumped by every change of status, verdict or assignee, so that two people acting on
    # the same case at once cannot both win (compare-and-swap in workflows.services).
    version = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cases")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class ChecklistItem(models.Model):
    """One of the five questions every verification answers, with its finding."""

    class Key(models.TextChoices):
        PROVENANCE = "provenance", "Provenance: is this the original or the earliest copy found?"
        SOURCE = "source", "Source: who filmed it, and who posted it?"
        DATE = "date", "Date: when was it filmed (chronolocation)?"
        LOCATION = "location", "Location: where was it filmed (geolocation)?"
        MOTIVATION = "motivation", "Motivation: why was it filmed and posted?"

    class State(models.TextChoices):
        OPEN = "open"
        DONE = "done"
        NOT_APPLICABLE = "not_applicable", "Not applicable"

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="checklist")
    key = models.CharField(max_length=20, choices=Key.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    finding = models.TextField(blank=True)
    latitude = models.FloatField(null=True, blank=True, help_text="Location item only.")
    longitude = models.FloatField(null=True, blank=True, help_text="Location item only.")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "key"], name="checklist_item_unique_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"


class AppendOnlyQuerySet(models.QuerySet[Any]):
    """A queryset whose rows can be added but never changed or removed in bulk."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise PermissionError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> NoReturn:  # type: ignore[override]
        raise PermissionError(f"{self.model.__name__} rows are append-only")


class AppendOnlyModel(models.Model):
    """A record that is written once: saving an existing row or deleting one is refused."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PermissionError(f"{type(self).__name__} rows are append-only")


class Note(AppendOnlyModel):
    """A reviewer's note on a case, optionally anchored to a media item and a moment in it.

    Notes are never edited in place: an edit is a new note that replaces the old one, and the
    old version stays readable.
    """

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    media_item = models.ForeignKey("verify.MediaItem", null=True, blank=True, on_delete=models.PROTECT)
    keyframe = models.ForeignKey("verify.Keyframe", null=True, blank=True, on_delete=models.SET_NULL)
    timestamp_s = models.FloatField(null=True, blank=True, help_text="Moment in the media item.")
    replaces = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note {self.pk} on case {self.case_id}"


class Assignment(AppendOnlyModel):
    """Who assigned whom to a case, and when; reassignment adds a row."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="assignments")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["assigned_at", "id"]

    def __str__(self) -> str:
        return f"case {self.case_id} assigned to {self.assignee_id}"


class AuditEvent(AppendOnlyModel):
    """One entry of a case's history: who did what to which object, and what changed."""

    class Action(models.TextChoices):
        CASE_OPENED = "case_opened"
        MEDIA_SUBMITTED = "media_submitted"
        ANALYSIS_FINISHED = "analysis_finished"
        ANALYSIS_INTERRUPTED = "analysis_interrupted"
        TRANSITION = "transition"
        VERDICT_PROPOSED = "verdict_proposed"
        VERDICT_APPROVED = "verdict_approved"
        ASSIGNMENT = "assignment"
        NOTE_ADDED = "note_added"
        NOTE_EDITED = "note_edited"
        CHECKLIST_CHANGED = "checklist_changed"
        ORIGINAL_DOWNLOADED = "original_downloaded"
        INTEGRITY_MISMATCH = "integrity_mismatch"
        EXPORT_GENERATED = "export_generated"
        EXPORT_DOWNLOADED = "export_downloaded"
        OCR_LANGUAGES_CHANGED = "ocr_languages_changed", "OCR languages changed"
        KEYFRAME_TEXT_REREAD = "keyframe_text_reread", "Keyframe text read again"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="history")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty when the system acted (e.g. the analysis finished).",
    )
    action = models.CharField(max_length=30, choices=Action.choices)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=50)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # Set by workflows.events.audit_record before the row is written, since it is hashed.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The hash chain (workflows.audit_chain): this event's content hash, which covers the hash
    # of the case's event before it.
    previous_hash = models.CharField(max_length=64, blank=True)
    entry_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.action} on case {self.case_id}"


def time_zone_validate(value: str) -> None:
    """Refuse a name that is not an IANA time zone."""
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a time zone name such as Europe/Kyiv or UTC.")


class ReviewerPreference(models.Model):
    """Per-user settings of the reviewer's desk."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_preference")
    reveal_keyframes = models.BooleanField(
        default=False, help_text="Show keyframes unblurred (they may show graphic content)."
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[time_zone_validate],
        help_text="IANA zone the desk shows times in; empty: the service's TIME_ZONE.",
    )

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class Export(models.Model):
    """A case report (PDF or HTML) or an evidence package, made by a worker for one person.

    A report is one stored file. A package is streamed as a ZIP at download time from its stored
    parts (manifest, audit trail, report, timestamps) and the originals and derived files they
    list (``entries``), so it is never held whole in memory nor stored twice.
    """

    class Kind(models.TextChoices):
        REPORT_PDF = "report_pdf", "Case report (PDF)"
        REPORT_HTML = "report_html", "Case report (HTML)"
        PACKAGE = "package", "Evidence package (ZIP)"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="exports")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    show_graphic = models.BooleanField(default=False, help_text="Keyframes shown unblurred in the report.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    progress_percent = models.PositiveSmallIntegerField(default=0)
    error_message = models.CharField(max_length=500, blank=True)
    file = models.CharField(max_length=255, blank=True, help_text="The stored report file.")
    entries = models.JSONField(default=list, blank=True, help_text="A package's [path in the ZIP, stored name] pairs.")
    tsa_urls = models.JSONField(default=list, blank=True, help_text="The TSAs configured when it was asked for.")
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the report file, or of a package's manifest.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} export {self.pk} of case {self.case_id}"


class CaseSearchDocument(models.Model):
    """What the archive search reads for one case, kept up to date by workflows.search_index.

    ``head`` holds the names (title, claimed location), ``body`` everything else a case is
    found by: claim, source URL, current notes, text read in its keyframes, device make, model
    and software, and the SHA-256 of its media. On PostgreSQL ``vector`` is their full-text
    vector in the ``simple`` configuration (no stemming, so Cyrillic and Arabic words work as
    written), with the names weighted higher; it stays null on SQLite.
    """

    case = models.OneToOneField(Case, on_delete=models.CASCADE, primary_key=True, related_name="search_document")
    head = models.TextField(blank=True)
    body = models.TextField(blank=True)
    # Lower-cased copies for SQLite, whose LIKE folds the case of ASCII letters only.
    head_folded = models.TextField(blank=True)
    body_folded = models.TextField(blank=True)
    vector = SearchVectorField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"search document of case {self.case_id}"
