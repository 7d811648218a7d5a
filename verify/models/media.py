"""A submitted original, its analysis state and its metadata; the answers kept for idempotent requests."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class MediaItem(models.Model):
    """One submitted file in a case, with the state of its analysis.

    The original is stored write-once under a content-addressed server name; the client's file
    name is kept only as metadata and never used as a path.
    """

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        # Its worker was lost mid-analysis; it runs again (another attempt) as soon as a worker takes it.
        INTERRUPTED = "interrupted"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Stage(models.TextChoices):
        WAITING = "waiting"
        FETCHING = "fetching"  # a submitted link: the post and its media are being fetched
        PROBE = "probe"
        KEYFRAMES = "keyframes"
        HASHES = "hashes"
        CONTACT_SHEET = "contact_sheet"
        DONE = "done"

    class Mode(models.TextChoices):
        FULL = "full", "I-frames, scene changes and interval samples"
        FAST = "fast", "I-frames and interval samples, no scene pass"

    TERMINAL_STATES = (State.SUCCEEDED, State.FAILED)

    # The link to the case is by model label only: workflows builds on verify, not the reverse.
    case = models.ForeignKey("workflows.Case", on_delete=models.PROTECT, related_name="media_items")
    original = models.FileField(max_length=255, editable=False)
    original_filename = models.CharField(
        max_length=255, blank=True, help_text="The name the client sent, for display only."
    )
    size_bytes = models.PositiveBigIntegerField(editable=False)
    # Null until a submitted link is fetched: unknown, and never equal to another item's in a join.
    sha256 = models.CharField(max_length=64, null=True, db_index=True, editable=False)  # noqa: DJ001
    mime_type = models.CharField(max_length=100, blank=True, editable=False)
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="duplicates",
        help_text="The earliest item with the same SHA-256, if these bytes were submitted before.",
    )
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploaded_media")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    # Submitted as a link (verify.fetching): the post it came from, its place in an album, bytes so far.
    source_post = models.ForeignKey(
        "verify.SourcePost", null=True, blank=True, on_delete=models.PROTECT, related_name="media_items"
    )
    source_position = models.PositiveSmallIntegerField(null=True, blank=True)
    fetched_bytes = models.PositiveBigIntegerField(default=0, help_text="Bytes of a link's media fetched so far.")
    fetch_total_bytes = models.PositiveBigIntegerField(null=True, blank=True, help_text="As the source announced.")

    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.FULL)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED, db_index=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.WAITING)
    progress_percent = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    contact_sheet = models.FileField(max_length=255, blank=True, editable=False)
    keyframes_truncated = models.BooleanField(
        default=False, help_text="More frames qualified than the keyframe cap allowed."
    )
    ffmpeg_version = models.CharField(max_length=100, blank=True)

    # Job recovery: the database, not the broker, says which jobs still need a worker.
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the analysis job was last handed to the broker."
    )
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="A running job whose lease has passed was lost with its worker."
    )
    lease_owner = models.CharField(
        max_length=200,
        blank=True,
        help_text="The worker process holding the lease: host and pid namespace, worker pid, pool process pid.",
    )
    # Evidence integrity: the stored original is re-hashed periodically.
    integrity_checked_at = models.DateTimeField(null=True, blank=True)
    integrity_mismatch = models.BooleanField(
        default=False, help_text="The stored original no longer hashes to its recorded SHA-256."
    )

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["case", "state"])]

    def __str__(self) -> str:
        return f"media {self.pk} ({(self.sha256 or 'not fetched')[:12]})"

    @property
    def is_finished(self) -> bool:
        return self.state in self.TERMINAL_STATES


class MediaMetadata(models.Model):
    """What ffprobe and exiftool say about an original: their raw answers plus normalised fields.

    Every field is null or blank when the file does not carry it; nothing is filled in from
    the upload time or the file system.
    """

    media_item = models.OneToOneField(MediaItem, on_delete=models.CASCADE, related_name="metadata")
    raw = models.JSONField(help_text="ffprobe's JSON answer, unchanged.")
    container = models.CharField(max_length=100, blank=True)
    container_long_name = models.CharField(max_length=200, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    bit_rate_bps = models.PositiveBigIntegerField(null=True, blank=True)
    video_codec = models.CharField(max_length=50, blank=True)
    coded_width = models.PositiveIntegerField(null=True, blank=True, help_text="Width as stored.")
    coded_height = models.PositiveIntegerField(null=True, blank=True, help_text="Height as stored.")
    display_width = models.PositiveIntegerField(null=True, blank=True, help_text="Width after rotation.")
    display_height = models.PositiveIntegerField(null=True, blank=True, help_text="Height after rotation.")
    rotation_deg = models.PositiveSmallIntegerField(default=0, help_text="Clockwise display rotation.")
    frame_rate_fps = models.FloatField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    # What the keyframe pass decoded (verify.decoding), beside what the container declares above.
    decoded_duration_s = models.FloatField(
        null=True, blank=True, help_text="How much of the video decoded; duration_s is what the container declares."
    )
    decoded_frame_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Frames decoded; null in fast mode, which decodes key frames only."
    )
    decode_error_count = models.PositiveIntegerField(default=0, help_text="Errors ffmpeg reported while decoding.")
    decode_errors = models.JSONField(
        default=list, blank=True, help_text="The kinds of error ffmpeg reported while decoding: message and count."
    )
    audio_codec = models.CharField(max_length=50, blank=True)
    audio_channels = models.PositiveSmallIntegerField(null=True, blank=True)
    audio_sample_rate_hz = models.PositiveIntegerField(null=True, blank=True)
    creation_time = models.DateTimeField(null=True, blank=True)
    creation_time_source = models.CharField(
        max_length=200, blank=True, help_text="The tag the creation time was read from."
    )
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    altitude_m = models.FloatField(null=True, blank=True)
    location_source = models.CharField(max_length=200, blank=True)
    device_make = models.CharField(max_length=200, blank=True)
    device_model = models.CharField(max_length=200, blank=True)
    device_software = models.CharField(max_length=200, blank=True)
    encoder = models.CharField(max_length=200, blank=True)
    # Read by exiftool (verify.exif): what ffprobe does not read, photos first of all.
    capture_time_local = models.CharField(
        max_length=40, blank=True, help_text="Capture time as the device's clock showed it (ISO 8601, no zone)."
    )
    capture_time_zone = models.CharField(
        max_length=6, blank=True, help_text="UTC offset of the capture time, e.g. +03:00; empty when unknown."
    )
    capture_time_source = models.CharField(max_length=200, blank=True)
    location_accuracy_m = models.FloatField(null=True, blank=True, help_text="GPS horizontal positioning error.")
    location_dop = models.FloatField(null=True, blank=True, help_text="GPS dilution of precision.")
    image_direction_deg = models.FloatField(null=True, blank=True, help_text="Direction the camera faced.")
    lens_model = models.CharField(max_length=200, blank=True)
    body_serial_number = models.CharField(max_length=200, blank=True)
    author = models.CharField(max_length=200, blank=True)
    copyright = models.CharField(max_length=200, blank=True)
    creator_tool = models.CharField(max_length=200, blank=True, help_text="XMP CreatorTool.")
    caption = models.CharField(max_length=2000, blank=True)
    edit_history = models.JSONField(default=list, blank=True, help_text="XMP edit history: action, software, when.")
    exif_orientation = models.PositiveSmallIntegerField(null=True, blank=True, help_text="EXIF orientation, 1-8.")
    exiftool = models.JSONField(
        default=dict, blank=True, help_text="exiftool's JSON answer (-G1 -n), without the server's file fields."
    )
    signals = models.JSONField(default=list, blank=True, help_text="Things a reviewer should look at, with evidence.")
    values_truncated = models.BooleanField(
        default=False, help_text="Some metadata strings were longer than the service stores and were cut."
    )

    class Meta:
        verbose_name_plural = "media metadata"

    def __str__(self) -> str:
        return f"metadata of media {self.media_item_id}"

    @classmethod
    def normalised_field_names(cls) -> list[str]:
        """Return the fields read from the file; ``ffmpeg.ProbeResult`` has an attribute for each."""
        bookkeeping = {
            "id", "media_item", "raw", "values_truncated", "exiftool", "signals", *cls.EXIFTOOL_FIELDS,
            *cls.DECODE_FIELDS,
        }  # fmt: skip
        return [field.name for field in cls._meta.concrete_fields if field.name not in bookkeeping]

    # Fields the keyframe pass fills; ``verify.decoding.DecodeReport.stored_values`` returns each.
    DECODE_FIELDS = ("decoded_duration_s", "decoded_frame_count", "decode_error_count", "decode_errors")

    # Fields only exiftool reads; ``verify.exif.ExifFacts`` has an attribute for each.
    EXIFTOOL_FIELDS = (
        "capture_time_local",
        "capture_time_zone",
        "capture_time_source",
        "location_accuracy_m",
        "location_dop",
        "image_direction_deg",
        "lens_model",
        "body_serial_number",
        "author",
        "copyright",
        "creator_tool",
        "caption",
        "edit_history",
        "exif_orientation",
    )


class IdempotentRequest(models.Model):
    """The first answer to a request sent with an ``Idempotency-Key``, replayed on retries."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path, fields and file.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty while in progress.")
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    response_location = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_unique_key")]

    def __str__(self) -> str:
        return f"idempotent request {self.key!r} of user {self.user_id}"
