"""What the analysis keeps of the pictures: keyframes, their text, their hashes, and the dense frame hashes."""

from django.db import models

from verify.models.media import MediaItem


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
