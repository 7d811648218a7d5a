"""Cases: the claim that submitted footage is said to support."""

from django.conf import settings
from django.db import models


class Case(models.Model):
    """A claim about footage: what it is said to show, where, when, and where it was posted."""

    class Status(models.TextChoices):
        NEW = "new", "New (analysis running)"
        READY_FOR_REVIEW = "ready_for_review", "Ready for review"

    title = models.CharField(max_length=300)
    claim = models.TextField(help_text="What the footage is said to show.")
    source_url = models.URLField(max_length=2000, blank=True, help_text="Where the footage was posted.")
    claimed_location = models.CharField(max_length=300, blank=True)
    claimed_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.NEW, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cases")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title
