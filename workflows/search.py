"""One search over the whole archive: ranked cases the user may see, with the matching snippet.

PostgreSQL matches every word of the query as a prefix in the cases' full-text vectors (the
``simple`` configuration: no stemming, so Cyrillic and Arabic work as typed), ranks by
``ts_rank`` plus trigram similarity of the title, and finds SHA-256 prefixes through the
hashes' own index. SQLite has no full-text index here: every word must occur in the lower-cased
document (``contains``), names count double. Both answer the same shape, and both start from
the cases the user may see (``workflows.selectors``), so a case the user may not see is never
among the results.

A search ranks at most ``RANKED_MAX`` cases: the newest of the matches. A word found in a fifth
of the archive (a device make) would otherwise cost a rank, a fetch of its document and a count
for each of 20,000 cases on every request; with the cap a search costs about as much as its
1,000 newest matches, and ``SearchHits.capped`` says when more matched, so that ``count`` is
read as "at least".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from math import ceil
from typing import Any, overload

from django.contrib.postgres.search import (
    SearchQuery,
    SearchQueryCombinable,
    SearchQueryField,
    SearchRank,
    TrigramSimilarity,
)
from django.db import connection
from django.db.models import Case as CaseWhen
from django.db.models import F, FloatField, Func, Max, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.db.models.lookups import Lookup
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from verify.models import MediaItem, MediaMetadata
from workflows import selectors
from workflows.models import Case, CaseSearchDocument
from workflows.search_index import VIEWER_LEXEME

_WORD = re.compile(r"\w+", re.UNICODE)
_HEX = re.compile(r"^[0-9a-f]{6,64}$")
MAX_WORDS = 8
_DOCUMENT_TEXT = ("search_document__head", "search_document__body")
SNIPPET_CHARS = 160
RANKED_MAX = 1_000
# The newest cases are searched first, this many in the first window (``_newest_in_windows``).
_FIRST_WINDOW = 8_000


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


class SearchHits:
    """The ranked cases of one search, as a paginator reads them: a length, and slices of the ranking.

    ``count`` is how many cases were ranked. ``capped`` is true when more than ``RANKED_MAX``
    cases matched: then the ``RANKED_MAX`` newest of them were ranked and ``count`` is a lower
    bound.
    """

    def __init__(self, ranked: QuerySet[Case], *, count: int, capped: bool) -> None:
        self.ranked = ranked
        self.count = count
        self.capped = capped

    def __len__(self) -> int:
        return self.count

    @overload
    def __getitem__(self, index: int) -> Case: ...
    @overload
    def __getitem__(self, index: slice) -> list[Case]: ...
    def __getitem__(self, index: int | slice) -> Case | list[Case]:
        if isinstance(index, slice):
            return list(self.ranked[index])
        return self.ranked[index]

    def __iter__(self) -> Iterator[Case]:
        return iter(self.ranked)


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


def _tsquery(words: list[str]) -> SearchQuery:
    return SearchQuery(" & ".join(f"{word}:*" for word in words), search_type="raw", config="simple")


def _hex_prefix(q: str) -> str:
    prefix = q.strip().lower()
    return prefix if _HEX.match(prefix) else ""


def _url_part(q: str) -> str:
    # PostgreSQL's parser keeps a URL whole (t.me/example/12), so a part of one is matched as text.
    part = q.strip()
    return part if " " not in part and ("/" in part or "." in part) else ""


def _postgres_other_matches(q: str) -> Q:
    """Return what finds a case besides its words: a SHA-256 prefix, a part of its source URL."""
    matches = Q()
    if prefix := _hex_prefix(q):
        matches |= Q(pk__in=MediaItem.objects.filter(sha256__startswith=prefix).values("case"))
    if part := _url_part(q):
        matches |= Q(source_url__icontains=part)
    return matches


def _postgres_matches(words: list[str], q: str) -> Q:
    return Q(search_document__vector=_tsquery(words)) | _postgres_other_matches(q)


def _postgres_rank(words: list[str], q: str) -> Any:
    return Coalesce(SearchRank(F("search_document__vector"), _tsquery(words)), Value(0.0)) + TrigramSimilarity(
        "title", q
    )


def _fallback_matches_and_rank(words: list[str], q: str) -> tuple[Q, Any]:
    matches = Q()
    score: Any = Value(0.0)
    for word in words:
        in_head = Q(search_document__head_folded__contains=word)
        in_body = Q(search_document__body_folded__contains=word)
        matches &= in_head | in_body
        score = score + CaseWhen(When(in_head, then=Value(2.0)), default=Value(0.0), output_field=FloatField())
        score = score + CaseWhen(When(in_body, then=Value(1.0)), default=Value(0.0), output_field=FloatField())
    if prefix := _hex_prefix(q):
        matches |= Q(pk__in=MediaItem.objects.filter(sha256__startswith=prefix).values("case"))
    return matches, score


def _ranked(cases: QuerySet[Case], words: list[str], q: str) -> QuerySet[Case]:
    rank = _postgres_rank(words, q) if connection.vendor == "postgresql" else _fallback_matches_and_rank(words, q)[1]
    return cases.annotate(search_rank=rank).order_by("-search_rank", "-created_at", "-id")


def case_search_apply(*, cases: QuerySet[Case], q: str) -> QuerySet[Case]:
    """Return the cases among ``cases`` that match q, annotated with ``search_rank``, best first.

    Every case in ``cases`` that matches is ranked: callers narrow it first (the desk to
    ``case_search_candidates``). ``cases`` must already be limited to what the user may see.
    """
    words = query_words(q)
    cases = cases.select_related("search_document")
    if not words:
        return cases.annotate(search_rank=Value(0.0)).order_by("-created_at", "-id")
    if connection.vendor == "postgresql":
        return _ranked(cases.filter(_postgres_matches(words, q)), words, q)
    return _ranked(cases.filter(_fallback_matches_and_rank(words, q)[0]), words, q)


class _AnyOf(Lookup):  # type: ignore[type-arg]
    """``id = ANY(array)``: one array parameter rather than an IN list of a thousand, one statement text.

    The ids go to the driver as they are (ints), not through a field's conversion one by one.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", (*lhs_params, [int(i) for i in self.rhs])


def _id_any(field: str, ids: list[int]) -> _AnyOf | Q:
    if connection.vendor != "postgresql":
        return Q(**{f"{field}__in": ids})
    return _AnyOf(F(field), ids)


class _Lexeme(SearchQueryCombinable, Func):  # type: ignore[misc]
    """A tsquery of one lexeme taken as written (``'#viewer=7'::tsquery``), past the parser that would split it."""

    template = "%(expressions)s::tsquery"
    output_field = SearchQueryField()


def _newest_in_windows(documents: QuerySet[CaseSearchDocument], *, limit: int) -> list[int]:
    """Return the case ids of the newest ``limit`` documents, searched in windows of ids from the newest down.

    The first window holds ``_FIRST_WINDOW`` cases; the next one is as wide as the matches
    seen so far say it must be to hold what is missing (a quarter more), or the rest of the
    archive when none matched. So a word in a fifth of the archive reads one window and a rare
    one two, each from the GIN index and the primary key together.
    """
    high = CaseSearchDocument.objects.aggregate(top=Max("case_id"))["top"] or 0
    size, covered = _FIRST_WINDOW, 0
    matched: list[int] = []
    while high > 0 and len(matched) < limit:
        window = documents.filter(case_id__gt=high - size, case_id__lte=high).order_by("-case_id")
        matched += window.values_list("case_id", flat=True)[: limit - len(matched)]
        high, covered = high - size, covered + size
        missing = limit - len(matched)
        size = ceil(missing * covered / len(matched) * 1.25) if matched else high
    return matched


def _postgres_newest_matches(
    *, user: Any, words: list[str], q: str, restrict: QuerySet[Case] | None, limit: int
) -> list[int]:
    """Return the ids of the newest ``limit`` cases this user may see that match, newest first.

    Ranking every match would cost as much as there are matches (a fifth of the archive for a
    device make). Someone who sees every case searches windows of the newest cases until
    ``limit`` are found: in each, PostgreSQL ANDs the GIN index's matches with the window from
    the primary key and reads only those rows. An analyst's
    words are ANDed with their viewer lexeme (``search_index.VIEWER_LEXEME``), so the index
    answers "matches and is theirs" at once; the rule of ``selectors.case_list_for_user`` then
    decides.
    """
    sees_all = selectors.user_sees_every_case(user=user)
    tsquery: Any = _tsquery(words)
    if not sees_all:
        tsquery = tsquery & _Lexeme(Value(f"'{VIEWER_LEXEME.format(user.pk)}'"))
    documents = CaseSearchDocument.objects.filter(vector=tsquery)
    others = Case.objects.filter(extra) if (extra := _postgres_other_matches(q)) else None
    if restrict is not None:
        documents = documents.filter(case_id__in=restrict.values("pk"))
        others = others.filter(pk__in=restrict.values("pk")) if others is not None else None
    found: list[int] = []
    if others is not None:
        if not sees_all:
            others = others.filter(pk__in=selectors.case_list_for_user(user=user).values("pk"))
        found += others.order_by("-pk").values_list("pk", flat=True)[:limit]
    if sees_all:
        matched = _newest_in_windows(documents, limit=limit)
    else:
        matched = list(documents.order_by("-case_id").values_list("case_id", flat=True)[:limit])
    ids = sorted(set(found) | set(matched), reverse=True)[:limit]
    if sees_all or not ids:
        return ids
    visible = selectors.case_list_for_user(user=user).filter(_id_any("pk", ids))
    return list(visible.order_by("-pk").values_list("pk", flat=True))


def _newest_matches(*, user: Any, words: list[str], q: str, filters: SearchFilters, limit: int) -> list[int]:
    """Return the ids of the newest ``limit`` cases this user may see that match q and the filters."""
    restrict = None if filters == SearchFilters() else _filtered(Case.objects.all(), user=user, filters=filters)
    if connection.vendor == "postgresql":
        return _postgres_newest_matches(user=user, words=words, q=q, restrict=restrict, limit=limit)
    cases = _filtered(selectors.case_list_for_user(user=user), user=user, filters=filters)
    matches = cases.filter(_fallback_matches_and_rank(words, q)[0])
    return list(matches.order_by("-pk").values_list("pk", flat=True)[:limit])


def case_search_candidates(*, user: Any, q: str) -> list[int] | None:
    """Return the ids of the newest ``RANKED_MAX`` cases this user may see that match q; None for no words.

    The desk's case list ranks these, as the API does, instead of every match in the archive.
    """
    words = query_words(q)
    if not words:
        return None
    return _newest_matches(user=user, words=words, q=q, filters=SearchFilters(), limit=RANKED_MAX)


def case_search_for_user(*, user: Any, q: str, filters: SearchFilters | None = None) -> SearchHits:
    """Return the cases this user may see that match q and the filters, best match first.

    Each case carries ``search_rank``; at most the ``RANKED_MAX`` newest matches are ranked
    (``SearchHits.capped``). An empty query lists the filtered cases, newest first, all of them.
    """
    filters = filters or SearchFilters()
    words = query_words(q)
    if not words:
        cases = _filtered(selectors.case_list_for_user(user=user), user=user, filters=filters)
        listed = case_search_apply(cases=cases.prefetch_related(None), q="")
        return SearchHits(listed, count=listed.count(), capped=False)
    ids = _newest_matches(user=user, words=words, q=q, filters=filters, limit=RANKED_MAX + 1)
    # The page needs the names and the document's text for its snippets, not the vectors.
    page_fields = ("title", "status", "verdict", "claimed_date", "created_at", *_DOCUMENT_TEXT)
    candidates = Case.objects.filter(_id_any("pk", ids[:RANKED_MAX])).select_related("search_document")
    ranked = _ranked(candidates.only(*page_fields), words, q)
    return SearchHits(ranked, count=min(len(ids), RANKED_MAX), capped=len(ids) > RANKED_MAX)


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
