"""Reviewer notes: added to a case, anchored to media or a moment, versioned and never overwritten."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from verify.errors import Refused
from verify.models import Keyframe, MediaItem
from workflows import events
from workflows.models import Case, Note
from workflows.transitions import WorkflowError


def note_create(
    *,
    case: Case,
    author: Any,
    body: str,
    media_item: MediaItem | None = None,
    keyframe: Keyframe | None = None,
    timestamp_s: float | None = None,
    replaces: Note | None = None,
) -> Note:
    note = Note.objects.create(
        case=case,
        author=author,
        body=body,
        media_item=media_item,
        keyframe=keyframe,
        timestamp_s=timestamp_s,
        replaces=replaces,
    )
    events.note_written_event(note=note, actor=author)
    return note


def note_add(
    *,
    case: Case,
    author: Any,
    body: str,
    media_item: MediaItem | None = None,
    keyframe: Keyframe | None = None,
    timestamp_s: float | None = None,
) -> Note:
    """Add a note to a case, optionally anchored to a media item and a keyframe or moment."""
    if not body.strip():
        raise ValidationError({"body": ["A note cannot be empty."]})
    if keyframe is not None:
        media_item = media_item or keyframe.media_item
        if keyframe.media_item_id != media_item.pk:
            raise ValidationError({"keyframe": ["The keyframe belongs to another media item."]})
        timestamp_s = keyframe.timestamp_s if timestamp_s is None else timestamp_s
    if media_item is not None and media_item.case_id != case.pk:
        raise ValidationError({"media_item": ["The media item belongs to another case."]})
    if timestamp_s is not None and timestamp_s < 0:
        raise ValidationError({"timestamp_s": ["A moment in the footage cannot be negative."]})
    with transaction.atomic():
        return note_create(
            case=case, author=author, body=body, media_item=media_item, keyframe=keyframe, timestamp_s=timestamp_s
        )


def note_edit(*, note: Note, author: Any, body: str) -> Note:
    """Write a new version of a note; the old version is kept and marked as replaced."""
    if note.author_id != author.pk:
        raise WorkflowError(
            "forbidden", "Only the author of a note may write a new version of it.", kind=Refused.NOT_PERMITTED
        )
    if Note.objects.filter(replaces=note).exists():
        raise _note_replaced()
    if not body.strip():
        raise ValidationError({"body": ["A note cannot be empty."]})
    try:
        with transaction.atomic():
            return note_create(
                case=note.case,
                author=author,
                body=body,
                media_item=note.media_item,
                keyframe=note.keyframe,
                timestamp_s=note.timestamp_s,
                replaces=note,
            )
    except IntegrityError:
        # Two versions written at once: the one-to-one ``replaces`` lets exactly one in.
        raise _note_replaced() from None


def _note_replaced() -> WorkflowError:
    return WorkflowError("note_replaced", "This note already has a newer version; edit that one.")
