"""Cases and the review workflow built on the media-evidence domain."""
