"""Media-verification service: project configuration and the media-evidence domain."""
