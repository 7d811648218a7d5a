"""App configuration for cases and the review workflow."""

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Cases"

    def ready(self) -> None:
        from workflows import receivers, search_index  # noqa: F401 - connects the signal receivers
