"""Media evidence: submitted originals, their analysis state, metadata and keyframes."""

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


class Keyframe(models.Model):
    """A frame chosen from a video: when it is, why it was chosen, and its perceptual hash."""

    class Reason(models.TextChoices):
        IFRAME = "iframe"
        SCENE = "scene"
        INTERVAL = "interval"
        PHOTO = "photo"  # a still: the picture itself

    media_item = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="keyframes")
    timestamp_s = models.FloatField(help_text="Presentation time of the frame, from its PTS.")
    reasons = models.JSONField(default=list, help_text="Why the frame was chosen.")
    scene_score = models.FloatField(null=True, blank=True)
    image = models.FileField(max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    phash = models.CharField(max_length=16, help_text="64-bit DCT perceptual hash, hex.")
    source_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the original it came from.")
    ffmpeg_version = models.CharField(max_length=100, blank=True, help_text="The ffmpeg that decoded it.")

    class Meta:
        ordering = ["media_item", "timestamp_s"]
        constraints = [
            models.UniqueConstraint(fields=["media_item", "timestamp_s"], name="keyframe_unique_time"),
        ]

    def __str__(self) -> str:
        return f"keyframe {self.timestamp_s:.3f}s of media {self.media_item_id}"


class KeyframeText(models.Model):
    """Text Tesseract read in a keyframe: the words, each with its confidence and box, above a floor.

    A keyframe with no word above the confidence floor has no row (``verify.ocr``).
    """

    keyframe = models.OneToOneField(Keyframe, on_delete=models.CASCADE, related_name="text")
    media_item = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="keyframe_texts")
    text = models.TextField(help_text="The words in reading order, one line per text line.")
    words = models.JSONField(
        default=list,
        help_text="Each word: text, confidence (0-100) and box [left, top, width, height] in frame pixels.",
    )
    languages = models.CharField(max_length=100, help_text="Tesseract languages used, e.g. eng+ukr+rus+ara.")
    engine = models.CharField(max_length=100, blank=True, help_text="The Tesseract version that read it.")

    class Meta:
        ordering = ["media_item", "keyframe"]

    def __str__(self) -> str:
        return f"text of keyframe {self.keyframe_id}"


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


class KeyframeFingerprint(models.Model):
    """The PDQ hash of a keyframe: what the recycled-footage index looks up.

    The rows are the source of truth; each worker process keeps an in-memory index of them
    (``verify.similarity``) and catches up on rows added since it last looked.
    """

    keyframe = models.OneToOneField(Keyframe, on_delete=models.CASCADE, related_name="fingerprint")
    media_item = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="fingerprints")
    timestamp_s = models.FloatField(help_text="Presentation time of the keyframe.")
    pdq = models.CharField(max_length=64, help_text="256-bit PDQ hash, hex.")
    pdq_quality = models.PositiveSmallIntegerField(help_text="PDQ's own quality, 0-100; flat frames score low.")

    class Meta:
        ordering = ["media_item", "timestamp_s"]

    def __str__(self) -> str:
        return f"fingerprint {self.timestamp_s:.3f}s of media {self.media_item_id}"


class FrameHashes(models.Model):
    """PDQ hashes of a media item's frames at a fixed rate, inside any black bars (``verify.similarity.dense``).

    One row per item; ``frames`` packs each frame in 37 bytes (time in ms, quality, hash), and
    the ``*_frames`` fields the same frames' parts alike (``dense.CROPS``).
    """

    media_item = models.OneToOneField(MediaItem, on_delete=models.CASCADE, related_name="frame_hashes")
    rate_hz = models.FloatField(help_text="Frames hashed per second; 0 for a still.")
    frame_count = models.PositiveIntegerField()
    frames = models.BinaryField(help_text="Packed frames: uint32 time in ms, uint8 PDQ quality, 32-byte PDQ hash.")
    bars = models.JSONField(default=list, help_text="Black bars removed before hashing: left, top, right, bottom.")
    inner_frames = models.BinaryField(
        default=bytes, help_text="The central 70 % of each frame, packed alike: a copy with a logo or caption matches."
    )
    cropped_frames = models.BinaryField(
        default=bytes, help_text="The central 90 % of each frame, packed alike: a copy cropped by a tenth matches."
    )
    left_frames = models.BinaryField(
        default=bytes, help_text="The left 60 % of each frame, upright, packed alike: a large logo on the right."
    )
    right_frames = models.BinaryField(
        default=bytes, help_text="The right 60 % of each frame, upright, packed alike: a large logo on the left."
    )
    is_still = models.BooleanField(default=False, help_text="A photo, not a video.")

    def __str__(self) -> str:
        return f"{self.frame_count} frame hashes of media {self.media_item_id}"


class AudioFingerprint(models.Model):
    """Chromaprint fingerprint of a media item's first audio track (``verify.similarity.audio``).

    One row per item with sound; silent or steady-tone tracks have none, so they never match.
    """

    media_item = models.OneToOneField(MediaItem, on_delete=models.CASCADE, related_name="audio_fingerprint")
    algorithm = models.PositiveSmallIntegerField(default=1, help_text="Chromaprint algorithm (1, as AcoustID).")
    item_count = models.PositiveIntegerField(help_text="Sub-fingerprints, about 8 per second of audio.")
    fingerprint = models.BinaryField(help_text="Raw sub-fingerprints: little-endian uint32 each.")
    max_volume_db = models.FloatField(help_text="Loudest sample, dBFS, as ffmpeg's volumedetect reports it.")

    def __str__(self) -> str:
        return f"audio fingerprint of media {self.media_item_id}"


class MediaMatch(models.Model):
    """Footage of one media item seen in another: several keyframes matched at one time offset.

    Stored once from each side, so either item lists the other whichever came first.
    """

    media_item = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="matches")
    other = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="+")
    similarity = models.FloatField(help_text="1 for identical hashes, 0 for as different as unrelated pictures.")
    matched_frame_count = models.PositiveIntegerField()
    frame_pairs = models.JSONField(help_text="[time in this item, time in the other] of each matched keyframe, s.")
    time_offset_s = models.FloatField(help_text="Time in this item minus time in the other.")
    mirrored = models.BooleanField(default=False, help_text="The other item shows the footage mirrored.")
    exact = models.BooleanField(default=False, help_text="Both items have the same SHA-256.")
    transformations = models.JSONField(
        default=list,
        help_text="How the other item differs: scaled, bars_removed, rotated, mirrored, still_from_video, same_audio.",
    )
    audio_similarity = models.FloatField(
        null=True, blank=True, help_text="1 - 2 x the audio fingerprints' bit error rate; null if not matched."
    )
    audio_time_offset_s = models.FloatField(
        null=True, blank=True, help_text="Time in this item's audio minus time in the other's; null if not matched."
    )
    found_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["media_item", "-similarity", "other"]
        constraints = [models.UniqueConstraint(fields=["media_item", "other"], name="media_match_unique_pair")]

    def __str__(self) -> str:
        return f"media {self.media_item_id} matches media {self.other_id}"


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


from verify.fetching.models import SourcePost  # noqa: E402,F401  (registers the model with this app)
