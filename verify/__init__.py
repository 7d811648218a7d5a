"""Media-verification service: project configuration and the media-evidence domain."""

from verify.celery import app as celery_app

__all__ = ["celery_app"]
