"""Provenance of an original: its Content Credentials and the trusted timestamps of its hash."""

from django.db import models

from verify.models.media import MediaItem


class ContentCredentials(models.Model):
    """The C2PA manifest (Content Credentials) of an original, as checked offline by the worker."""

    class State(models.TextChoices):
        VALID = "valid", "Present and intact"
        INVALID = "invalid", "Present but broken"
        ABSENT = "absent", "No manifest"
        UNREADABLE = "unreadable", "Could not be read or checked offline"

    media_item = models.OneToOneField(MediaItem, on_delete=models.CASCADE, related_name="content_credentials")
    state = models.CharField(max_length=20, choices=State.choices)
    trusted = models.BooleanField(
        null=True, blank=True, help_text="The signer chains to a configured trust anchor; null without a trust list."
    )
    signer = models.CharField(max_length=300, blank=True)
    signer_issuer = models.CharField(max_length=300, blank=True)
    claim_generator = models.CharField(max_length=300, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True, help_text="From a trusted timestamp, when there is one.")
    ai_generated = models.BooleanField(default=False, help_text="An action says trainedAlgorithmicMedia.")
    actions = models.JSONField(default=list, blank=True)
    ingredients = models.JSONField(default=list, blank=True)
    validation_codes = models.JSONField(default=list, blank=True, help_text="What failed: code and explanation.")
    message = models.CharField(max_length=500, blank=True, help_text="Why the manifest could not be read.")
    manifest_store = models.JSONField(default=dict, blank=True, help_text="The reader's JSON answer.")
    reader_version = models.CharField(max_length=100, blank=True)
    checked_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "content credentials"

    def __str__(self) -> str:
        return f"content credentials of media {self.media_item_id}: {self.state}"


class Timestamp(models.Model):
    """An RFC 3161 timestamp of an original's SHA-256 by one TSA; pending until the TSA answers.

    ``response`` is the TSA's TimeStampResp exactly as received (DER): ``openssl ts -verify -in``
    reads it. ``certificates_pem`` holds the certificates the TSA sent with it (its chain).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Timestamp pending"
        GRANTED = "granted", "Timestamped"

    media_item = models.ForeignKey(MediaItem, on_delete=models.PROTECT, related_name="timestamps")
    tsa_url = models.CharField(max_length=500, help_text="The configured TSA asked.")
    digest_sha256 = models.CharField(max_length=64, help_text="What was timestamped: the original's SHA-256.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, db_index=True)
    response = models.BinaryField(null=True, blank=True, editable=False)
    certificates_pem = models.TextField(blank=True)
    gen_time = models.DateTimeField(null=True, blank=True, help_text="The time the TSA signed.")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["media_item", "id"]
        constraints = [
            models.UniqueConstraint(fields=["media_item", "tsa_url"], name="timestamp_unique_tsa_per_item"),
        ]

    def __str__(self) -> str:
        return f"timestamp of media {self.media_item_id} by {self.tsa_url}: {self.state}"
