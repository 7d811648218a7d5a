"""Media evidence: submitted originals, their analysis state, metadata, keyframes and matches.

One module per concern; every model is importable from ``verify.models``.
"""

from verify.fetching.models import SourcePost
from verify.models.frames import FrameHashes, Keyframe, KeyframeFingerprint, KeyframeText
from verify.models.matches import AudioFingerprint, MediaMatch
from verify.models.media import IdempotentRequest, MediaItem, MediaMetadata
from verify.models.provenance import ContentCredentials, Timestamp

__all__ = [
    "AudioFingerprint",
    "ContentCredentials",
    "FrameHashes",
    "IdempotentRequest",
    "Keyframe",
    "KeyframeFingerprint",
    "KeyframeText",
    "MediaItem",
    "MediaMatch",
    "MediaMetadata",
    "SourcePost",
    "Timestamp",
]
