"""One search over the whole archive: ranked cases the user may see, with the matching snippet.

PostgreSQL matches every word of the query as a prefix in the cases' full-text vectors (the
``simple`` configuration: no stemming, so Cyrillic and Arabic work as typed), ranks by
``ts_rank`` plus trigram similarity of the title, and finds SHA-256 prefixes through the
hashes' own index. SQLite has no full-text index here: every word must occur in the lower-cased
document (``contains``), names count double. Both answer the same shape, and both start from
``selectors.case_list_for_user``, so a case the user may not see is never among the results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramSimilarity
from django.db import connection
from django.db.models import Case as CaseWhen
from django.db.models import F, FloatField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from verify.models import MediaItem, MediaMetadata
from workflows import selectors
from workflows.models import Case, CaseSearchDocument

_WORD = re.compile(r"\w+", re.UNICODE)
_HEX = re.compile(r"^[0-9a-f]{6,64}$")
MAX_WORDS = 8
SNIPPET_CHARS = 160


@dataclass(frozen=True)
class SearchFilters:
    """What a search may be narrowed by besides its words."""

    status: str = ""
    verdict: str = ""
    assignee: int | None = None
    claimed_date_from: date | None = None
    claimed_date_to: date | None = None
    captured_from: datetime | None = None
    captured_to: datetime | None = None
    uploaded_from: datetime | None = None
    uploaded_to: datetime | None = None
    has_gps: bool | None = None
    seen_before: bool | None = None


def query_words(q: str) -> list[str]:
    """Return the query's words, lower-cased, at most MAX_WORDS of them."""
    return [word.lower() for word in _WORD.findall(q)][:MAX_WORDS]


def _filtered(cases: QuerySet[Case], *, user: Any, filters: SearchFilters) -> QuerySet[Case]:
    f = filters
    exact = {"status": f.status, "verdict": f.verdict}
    cases = cases.filter(**{name: value for name, value in exact.items() if value})
    if f.assignee is not None:
        cases = cases.filter(assignee_id=f.assignee)
    if f.claimed_date_from:
        cases = cases.filter(claimed_date__gte=f.claimed_date_from)
    if f.claimed_date_to:
        cases = cases.filter(claimed_date__lte=f.claimed_date_to)
    media = Q()
    if f.uploaded_from:
        media &= Q(uploaded_at__gte=f.uploaded_from)
    if f.uploaded_to:
        media &= Q(uploaded_at__lte=f.uploaded_to)
    if media:
        cases = cases.filter(pk__in=MediaItem.objects.filter(media).values("case"))
    metadata = Q()
    if f.captured_from:
        metadata &= Q(creation_time__gte=f.captured_from)
    if f.captured_to:
        metadata &= Q(creation_time__lte=f.captured_to)
    if f.has_gps:
        metadata &= Q(latitude__isnull=False, longitude__isnull=False)
    if metadata:
        cases = cases.filter(pk__in=MediaMetadata.objects.filter(metadata).values("media_item__case"))
    if f.has_gps is False:
        with_gps = MediaMetadata.objects.filter(latitude__isnull=False, longitude__isnull=False)
        cases = cases.exclude(pk__in=with_gps.values("media_item__case"))
    if f.seen_before is not None:
        cases = selectors.case_list_filter_seen_before(cases=cases, user=user, seen=f.seen_before)
    return cases


def _postgres_ranked(cases: QuerySet[Case], words: list[str], q: str) -> QuerySet[Case]:
    tsquery = SearchQuery(" & ".join(f"{word}:*" for word in words), search_type="raw", config="simple")
    matches = Q(search_document__vector=tsquery)
    hex_prefix = q.strip().lower()
    if _HEX.match(hex_prefix):
        matches |= Q(pk__in=MediaItem.objects.filter(sha256__startswith=hex_prefix).values("case"))
    if " " not in q.strip() and ("/" in q or "." in q):
        # PostgreSQL's parser keeps a URL whole (t.me/example/12), so a part of one is matched as text.
        matches |= Q(source_url__icontains=q.strip())
    return (
        cases.filter(matches)
        .annotate(
            search_rank=Coalesce(SearchRank(F("search_document__vector"), tsquery), Value(0.0))
            + TrigramSimilarity("title", q)
        )
        .order_by("-search_rank", "-created_at", "-id")
    )


def _fallback_ranked(cases: QuerySet[Case], words: list[str], q: str) -> QuerySet[Case]:
    matches = Q()
    score: Any = Value(0.0)
    for word in words:
        in_head = Q(search_document__head_folded__contains=word)
        in_body = Q(search_document__body_folded__contains=word)
        matches &= in_head | in_body
        score = score + CaseWhen(When(in_head, then=Value(2.0)), default=Value(0.0), output_field=FloatField())
        score = score + CaseWhen(When(in_body, then=Value(1.0)), default=Value(0.0), output_field=FloatField())
    hex_prefix = q.strip().lower()
    if _HEX.match(hex_prefix):
        matches |= Q(pk__in=MediaItem.objects.filter(sha256__startswith=hex_prefix).values("case"))
    return cases.filter(matches).annotate(search_rank=score).order_by("-search_rank", "-created_at", "-id")


def case_search_apply(*, cases: QuerySet[Case], q: str) -> QuerySet[Case]:
    """Return the cases among ``cases`` that match q, annotated with ``search_rank``, best first.

    ``cases`` must already be limited to what the user may see (``case_search_for_user`` does so).
    """
    words = query_words(q)
    cases = cases.select_related("search_document")
    if not words:
        return cases.annotate(search_rank=Value(0.0)).order_by("-created_at", "-id")
    if connection.vendor == "postgresql":
        return _postgres_ranked(cases, words, q)
    return _fallback_ranked(cases, words, q)


def case_search_for_user(*, user: Any, q: str, filters: SearchFilters | None = None) -> QuerySet[Case]:
    """Return the cases this user may see that match q and the filters, best match first.

    Each case carries ``search_rank``. An empty query lists the filtered cases, newest first.
    """
    cases = _filtered(selectors.case_list_for_user(user=user), user=user, filters=filters or SearchFilters())
    return case_search_apply(cases=cases, q=q)


def search_snippet(case: Case, q: str) -> SafeString:
    """Return the passage of the case's document where the query first matches, the matches marked.

    The document's text is escaped; only the ``<mark>`` elements are markup.
    """
    words = query_words(q)
    document = getattr(case, "search_document", None)
    text = "\n".join(part for part in ((document.head, document.body) if document else (case.title,)) if part)
    if not words:
        return mark_safe(escape(text[:SNIPPET_CHARS]))  # noqa: S308 - escaped just here
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(word) for word in words) + r")", re.IGNORECASE)
    first = pattern.search(text)
    start = max(0, first.start() - SNIPPET_CHARS // 3) if first else 0
    passage = text[start : start + SNIPPET_CHARS].replace("\n", " · ")
    pieces, last = [], 0
    for match in pattern.finditer(passage):
        pieces += [escape(passage[last : match.start()]), f"<mark>{escape(match.group(0))}</mark>"]
        last = match.end()
    pieces.append(escape(passage[last:]))
    prefix = "…" if start else ""
    suffix = "…" if start + SNIPPET_CHARS < len(text) else ""
    return mark_safe(prefix + "".join(pieces) + suffix)  # noqa: S308 - every piece of text is escaped


def search_documents_missing() -> QuerySet[Case]:
    """Return the cases that have no search document yet (made before the search existed)."""
    return Case.objects.exclude(pk__in=CaseSearchDocument.objects.values("case"))
