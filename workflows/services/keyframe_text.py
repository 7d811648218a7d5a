"""The languages a case's keyframe text is read in: changing them, and reading the keyframes again.

Each case may name its own Tesseract languages (``Case.ocr_languages``; empty means the
server's ``VERIFY_OCR_LANGUAGES``). They are read when an analysis reaches its OCR stage, so a
change applies to media analysed afterwards; ``case_keyframe_text_reread`` reads the keyframes
already stored again, in a worker, one media item per task. Both are open to anyone with a role
who may see the case (the caller checks that), until the case is closed, and both write an
event in the case's history.
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from verify import jobs, ocr
from verify.errors import Refused
from verify.models import Keyframe, MediaItem
from workflows import events, selectors
from workflows.models import Case, Status
from workflows.search_index import case_search_document_refresh
from workflows.transitions import CASE_CLOSED_REFUSAL, WorkflowError

logger = logging.getLogger(__name__)

REREAD_TASK = "workflows.tasks.keyframe_text_reread_task"


def _case_edit_check(*, case: Case, actor: Any) -> None:
    if not selectors.user_roles(actor):
        raise WorkflowError(
            "no_role",
            "Your account has no role in this service; ask a lead to give you one.",
            kind=Refused.NOT_PERMITTED,
        )
    if case.status == Status.CLOSED:
        raise WorkflowError(
            CASE_CLOSED_REFUSAL.code,
            "The case is closed and its record is final; a lead must reopen it first.",
            kind=CASE_CLOSED_REFUSAL.kind,
        )


def case_ocr_languages_set(*, case: Case, ocr_languages: str, actor: Any) -> Case:
    """Change the Tesseract languages the case's keyframes are read in ("" for the server's default).

    The value is checked against the installed language data (``ocr_language_missing``) and
    kept as ``eng+ukr`` whatever the separators it came with. The history records the old and
    new value; setting the same value again changes and records nothing.
    """
    _case_edit_check(case=case, actor=actor)
    value = ocr.languages_setting(ocr_languages)
    Case._meta.get_field("ocr_languages").clean(value, case)
    with transaction.atomic():
        locked = Case.objects.select_for_update(of=("self",)).get(pk=case.pk)
        _case_edit_check(case=locked, actor=actor)
        if locked.ocr_languages == value:
            return locked
        before = locked.ocr_languages
        Case.objects.filter(pk=case.pk).update(ocr_languages=value, updated_at=timezone.now())
        locked.refresh_from_db()
        events.ocr_languages_changed_event(case=locked, actor=actor, before=before, after=value)
    return locked


@dataclass(frozen=True)
class KeyframeTextReread:
    """A queued reading again: in which languages, and the media items whose keyframes are read."""

    languages: str
    media_item_ids: list[int]


def case_keyframe_text_reread(*, case: Case, actor: Any) -> KeyframeTextReread:
    """Queue reading the text in every keyframe of the case's analysed media again.

    The worker reads in the case's languages at the time it runs. Media still being analysed
    are left to their analysis, which reads in the languages it finds at its OCR stage.
    """
    _case_edit_check(case=case, actor=actor)
    languages = ocr.languages_setting(case.ocr_languages or None)
    if not languages:
        raise WorkflowError(
            "ocr_off",
            "Text in frames is off for this case: it names no languages and the server's default is empty.",
            kind=Refused.INVALID,
        )
    items = MediaItem.objects.filter(case=case, state=MediaItem.State.SUCCEEDED, keyframes__isnull=False)
    item_ids = sorted(set(items.values_list("pk", flat=True)))
    with transaction.atomic():
        events.keyframe_text_reread_event(case=case, actor=actor, languages=languages, media_item_ids=item_ids)
        for item_id in item_ids:
            send = functools.partial(jobs.task_send, name=REREAD_TASK, args=(item_id,))
            transaction.on_commit(send, robust=True)
    return KeyframeTextReread(languages=languages, media_item_ids=item_ids)


def media_item_keyframe_text_reread(*, media_item_id: int) -> int:
    """Read the text in an analysed item's stored keyframes again (worker side); return the keyframes with text.

    Safe to run twice: the item's text rows are replaced wholesale, and its case's search
    document is rebuilt from them. An item that is no longer analysed, or whose keyframes
    changed while they were read, is left to its analysis.
    """
    item = MediaItem.objects.filter(pk=media_item_id, state=MediaItem.State.SUCCEEDED).first()
    if item is None:
        return 0
    keyframes = list(Keyframe.objects.filter(media_item=item).order_by("timestamp_s"))
    try:
        with tempfile.TemporaryDirectory(prefix="verify-reread-") as work:
            paths: dict[float, Path] = {}
            for keyframe in keyframes:
                path = Path(work) / f"keyframe-{keyframe.pk}.jpg"
                with keyframe.image.open("rb") as stored, path.open("wb") as local:
                    shutil.copyfileobj(stored, local)
                paths[keyframe.timestamp_s] = path
            count = ocr.media_item_ocr(item, paths)
    except (FileNotFoundError, IntegrityError):
        logger.warning("the keyframes of media item %s changed while their text was read again", item.pk)
        return 0
    case_search_document_refresh(case_id=item.case_id)
    logger.info("read the keyframe text of media item %s again: %s keyframes with text", item.pk, count)
    return count
