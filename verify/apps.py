"""App configuration for the media-evidence domain."""

from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class VerifyConfig(AppConfig):
    name = "verify"
    verbose_name = "Media evidence"

    def ready(self) -> None:
        # Configure the Celery app in every Django process, so that jobs sent from the web
        # process use the project's broker; the package itself stays importable without Celery.
        from verify import celery  # noqa: F401

        # Embedded defaults keep everything under var/; make sure its folders exist.
        broker_options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if key in broker_options:
                Path(broker_options[key]).mkdir(parents=True, exist_ok=True)
        for folder in (settings.VAR_DIR, settings.STATIC_ROOT):
            Path(folder).mkdir(parents=True, exist_ok=True)
