"""Celery interfaces to the case services: take an id, call one service."""

from celery import shared_task

from workflows.services.exports import export_generate
from workflows.services.keyframe_text import media_item_keyframe_text_reread


@shared_task(acks_late=True)
def export_generate_task(export_id: int) -> None:
    """Make one report or evidence package; safe to deliver more than once."""
    export_generate(export_id=export_id)


@shared_task(acks_late=True)
def keyframe_text_reread_task(media_item_id: int) -> None:
    """Read an analysed item's keyframe text again in its case's languages; safe to deliver more than once."""
    media_item_keyframe_text_reread(media_item_id=media_item_id)
