"""Media-verification service: project configuration and the media-evidence domain."""

__version__ = "0.1.0"  # as in pyproject.toml
