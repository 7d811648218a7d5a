"""Recycled footage: the audio fingerprint of an item and the matches between items."""

from django.db import models

from verify.models.media import MediaItem


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
        help_text=(
            "How the other item differs: scaled, bars_removed, rotated, mirrored, logo, cropped, "
            "still_from_video, same_audio."
        ),
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
