"""Celery interfaces to the case services: take an id, call one service."""

from celery import shared_task

from workflows.services.exports import export_generate


@shared_task(acks_late=True)
def export_generate_task(export_id: int) -> None:
    """Make one report or evidence package; safe to deliver more than once."""
    export_generate(export_id=export_id)
