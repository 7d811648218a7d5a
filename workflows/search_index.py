"""Keep each case's search document up to date: rebuilt from its rows whenever one of them changes.

The document is derived data: ``case_search_document_refresh`` rebuilds it from the case, its
current notes, its media metadata, the text read in its keyframes and its media's SHA-256, so
running it twice gives the same row. Receivers call it after a case, note, metadata or keyframe
text is saved, and after an analysis finishes; ``case_search_documents_rebuild`` redoes all.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import connection, transaction
from django.db.models import F, Func
from django.db.models.signals import post_save
from django.dispatch import receiver

from verify.models import KeyframeText, MediaItem, MediaMetadata
from verify.signals import analysis_finished
from workflows.models import Case, CaseSearchDocument, Note

SEARCH_CONFIG = "simple"
# A lexeme no query can contain (query words are runs of letters and digits), naming a user.
VIEWER_LEXEME = "#viewer={}"


class _ViewerLexemes(Func):
    """The document's case's viewers as lexemes: who opened it, is assigned to it, submitted media to it.

    An analyst's search ANDs its words with their own lexeme, so the GIN index finds the
    matches among the cases that are theirs in one scan, instead of every match in the archive
    being fetched to be filtered. It only narrows what is read: the results are still filtered
    by ``workflows.selectors``' rule, so a lexeme gone stale can hide a case, never show one.
    """

    template = (
        "array_to_tsvector(ARRAY(SELECT DISTINCT '#viewer=' || viewer.id FROM ("
        " SELECT c.created_by_id AS id FROM workflows_case c WHERE c.id = %(expressions)s"
        " UNION ALL SELECT c.assignee_id FROM workflows_case c WHERE c.id = %(expressions)s"
        " AND c.assignee_id IS NOT NULL"
        " UNION ALL SELECT m.uploaded_by_id FROM verify_mediaitem m WHERE m.case_id = %(expressions)s"
        ") viewer))"
    )
    output_field = SearchVectorField()


def search_vector() -> Any:
    """Return the document's full-text vector expression: names weighted A, the rest B, and its viewers."""
    words = SearchVector("head", weight="A", config=SEARCH_CONFIG) + SearchVector(
        "body", weight="B", config=SEARCH_CONFIG
    )
    return Func(words, _ViewerLexemes(F("case_id")), arg_joiner=" || ", template="(%(expressions)s)")


def case_search_document_texts(*, case: Case) -> tuple[str, str]:
    """Return the head (names) and body (everything else) a case is found by."""
    head = "\n".join(part for part in (case.title, case.claimed_location) if part)
    notes = Note.objects.filter(case=case, replaced_by__isnull=True).values_list("body", flat=True)
    devices = MediaMetadata.objects.filter(media_item__case=case).values_list(
        "device_make", "device_model", "device_software"
    )
    texts = KeyframeText.objects.filter(media_item__case=case).order_by("media_item", "keyframe__timestamp_s")
    hashes = MediaItem.objects.filter(case=case).values_list("sha256", flat=True)
    parts = [
        case.claim,
        case.source_url,
        *notes,
        *texts.values_list("text", flat=True),
        *(" ".join(filter(None, row)) for row in devices),
        *hashes,
    ]
    return head, "\n".join(part for part in parts if part)


def case_search_document_refresh(*, case_id: int) -> None:
    """Rebuild one case's search document (and on PostgreSQL its vector)."""
    case = Case.objects.filter(pk=case_id).first()
    if case is None:
        return
    head, body = case_search_document_texts(case=case)
    CaseSearchDocument.objects.update_or_create(
        case=case, defaults={"head": head, "body": body, "head_folded": head.lower(), "body_folded": body.lower()}
    )
    if connection.vendor == "postgresql":
        CaseSearchDocument.objects.filter(case=case).update(vector=search_vector())


def case_search_documents_rebuild() -> int:
    """Rebuild every case's search document; return how many."""
    count = 0
    for case_id in Case.objects.values_list("pk", flat=True).iterator():
        case_search_document_refresh(case_id=case_id)
        count += 1
    return count


def _refresh_on_commit(case_id: int | None) -> None:
    if case_id is not None:
        transaction.on_commit(lambda: case_search_document_refresh(case_id=case_id))


@receiver(post_save, sender=Case, dispatch_uid="workflows.search_case_saved")
def _case_saved(sender: Any, instance: Case, **kwargs: Any) -> None:
    _refresh_on_commit(instance.pk)


@receiver(post_save, sender=Note, dispatch_uid="workflows.search_note_saved")
def _note_saved(sender: Any, instance: Note, **kwargs: Any) -> None:
    _refresh_on_commit(instance.case_id)


@receiver(post_save, sender=MediaItem, dispatch_uid="workflows.search_media_saved")
def _media_saved(sender: Any, instance: MediaItem, created: bool, **kwargs: Any) -> None:
    if created:
        _refresh_on_commit(instance.case_id)


@receiver(analysis_finished, dispatch_uid="workflows.search_analysis_finished")
def _analysis_finished(sender: Any, *, case_id: int, media_item_id: int, **kwargs: Any) -> None:
    # Metadata and keyframe text are written by the analysis, in bulk: refresh once at its end.
    _refresh_on_commit(case_id)
