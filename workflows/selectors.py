"""Read operations on cases and their media, always scoped to the requesting user."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery

from verify.models import Keyframe, MediaItem, MediaMatch
from verify.similarity import matching
from workflows import match_evidence
from workflows.match_evidence import MatchedFramePair, Transformation
from workflows.models import AuditEvent, Case, Export, Note, ReviewerPreference
from workflows.transitions import Role


def user_roles(user: Any) -> frozenset[Role]:
    """Return the workflow roles a user holds (from groups; a superuser is a lead).

    The answer is kept on the user object, so a request asks the database once.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_workflow_roles", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    names = set() if user.is_superuser else set(user.groups.values_list("name", flat=True))
    user._workflow_roles = roles_from_group_names(user, names)
    return user._workflow_roles  # type: ignore[no-any-return]


def roles_from_group_names(user: Any, names: set[str]) -> frozenset[Role]:
    """Return the workflow roles a user with these group names holds (a superuser is a lead)."""
    if user.is_superuser:
        return frozenset({Role.LEAD, Role.REVIEWER})
    return frozenset(role for role in Role if role.value in names)


def _visible_cases_q(user: Any, *, prefix: str = "") -> Q | None:
    """Return the filter for the cases this user may see, relative to prefix; None means all."""
    roles = user_roles(user)
    if roles & {Role.REVIEWER, Role.LEAD}:
        return None
    if Role.ANALYST in roles:
        uploaded = MediaItem.objects.filter(uploaded_by=user).values("case")
        return (
            Q(**{f"{prefix}created_by": user}) | Q(**{f"{prefix}assignee": user}) | Q(**{f"{prefix}pk__in": uploaded})
        )
    return Q(pk__in=[])


def user_sees_every_case(*, user: Any) -> bool:
    """Return whether this user may see every case (reviewers and leads), by the rule of ``case_list_for_user``."""
    return _visible_cases_q(user) is None


def case_list_for_user(*, user: Any) -> QuerySet[Case]:
    """Return the cases this user may see, with their media items loaded.

    Reviewers and leads see every case; an analyst sees the cases they opened, submitted
    media to or are assigned to; anyone else sees none.
    """
    media = MediaItem.objects.select_related("metadata", "uploaded_by").annotate(
        keyframe_count=Count("keyframes"), visible_duplicate_of_id=media_item_duplicate_of_visible(user=user)
    )
    cases = Case.objects.select_related("created_by", "assignee").prefetch_related(
        Prefetch("media_items", queryset=media)
    )
    visible = _visible_cases_q(user)
    return (cases if visible is None else cases.filter(visible)).order_by("-created_at", "-id")


def case_detail_for_user(*, user: Any) -> QuerySet[Case]:
    """Return the visible cases with checklist and current notes loaded, for a detail view."""
    current_notes = Note.objects.filter(replaced_by__isnull=True).select_related("author")
    return case_list_for_user(user=user).prefetch_related(
        "checklist", Prefetch("notes", queryset=current_notes, to_attr="current_notes")
    )


def case_history(*, case: Case) -> QuerySet[AuditEvent]:
    """Return the case's audit trail, oldest first."""
    return AuditEvent.objects.filter(case=case).select_related("actor").order_by("created_at", "id")


def note_versions(*, case: Case) -> QuerySet[Note]:
    """Return every version of every note on the case, oldest first."""
    return Note.objects.filter(case=case).select_related("author").order_by("created_at", "id")


def _media_items_visible(user: Any) -> QuerySet[MediaItem]:
    visible = _visible_cases_q(user, prefix="case__")
    return MediaItem.objects.all() if visible is None else MediaItem.objects.filter(visible)


def media_item_duplicate_of_visible(*, user: Any) -> Subquery:
    """Return an expression, per media item, for the earliest earlier item with its bytes that this user may see.

    The stored ``duplicate_of`` may lie in a case the user may not see; naming it would tell
    them that case exists. Null when no earlier copy is visible.
    """
    earlier = Q(uploaded_at__lt=OuterRef("uploaded_at")) | Q(uploaded_at=OuterRef("uploaded_at"), pk__lt=OuterRef("pk"))
    copies = _media_items_visible(user).filter(earlier, sha256=OuterRef("sha256")).order_by("uploaded_at", "id")
    return Subquery(copies.values("pk")[:1])


def media_item_list_for_user(*, user: Any) -> QuerySet[MediaItem]:
    """Return the media items in cases this user may see (workflows.polling applies the same rule in SQL).

    Each item carries ``visible_duplicate_of_id`` (see ``media_item_duplicate_of_visible``).
    """
    return _media_items_visible(user).annotate(visible_duplicate_of_id=media_item_duplicate_of_visible(user=user))


def media_item_detail_for_user(*, user: Any) -> QuerySet[MediaItem]:
    """Return the visible media items with metadata and keyframes loaded for a detail view."""
    keyframes = Keyframe.objects.select_related("text").order_by("timestamp_s")
    return (
        media_item_list_for_user(user=user)
        .select_related("metadata")
        .prefetch_related(Prefetch("keyframes", queryset=keyframes), "timestamps")
    )


def keyframe_list_for_user(*, user: Any) -> QuerySet[Keyframe]:
    """Return keyframes of media items this user may see."""
    return Keyframe.objects.filter(media_item__in=_media_items_visible(user).values("pk"))


def reviewer_reveals_keyframes(*, user: Any) -> bool:
    """Return whether this user chose to see keyframes unblurred (blurred by default)."""
    return ReviewerPreference.objects.filter(user=user, reveal_keyframes=True).exists()


def reviewer_time_zone(*, user: Any) -> str:
    """Return the IANA zone this user chose for times on the desk, or "" for the service's zone."""
    return ReviewerPreference.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""


def case_desk_list_for_user(*, user: Any) -> QuerySet[Case]:
    """Return the visible cases with the media count and a thumbnail keyframe, in one query."""
    first_keyframe = Keyframe.objects.filter(media_item__case=OuterRef("pk")).order_by(
        "media_item__uploaded_at", "media_item_id", "timestamp_s"
    )
    return case_list_for_user(user=user).annotate(
        media_count=Count("media_items", distinct=True),
        thumbnail_keyframe_id=Subquery(first_keyframe.values("pk")[:1]),
    )


def export_list_for_user(*, user: Any) -> QuerySet[Export]:
    """Return the reports and packages of the cases this user may see, newest first."""
    return Export.objects.filter(case__in=case_list_for_user(user=user).values("pk")).select_related("requested_by")


def user_list_assignable() -> QuerySet[Any]:
    """Return the active users who may be assigned a case: reviewers, leads and superusers."""
    role_names = sorted(role.value for role in (Role.REVIEWER, Role.LEAD))
    return (
        get_user_model()
        .objects.filter(Q(groups__name__in=role_names) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("username")
    )


# --- recycled footage: where a case's footage was also seen ---------------------------------


@dataclass(frozen=True)
class SeenBeforeEntry:
    """Another case the user may see holding footage of this case: which item, how alike, which frames."""

    case: Case
    other_media_item_id: int
    other_uploaded_at: datetime
    media_item_id: int
    uploaded_at: datetime
    exact: bool
    similarity: float
    matched_frame_count: int
    mirrored: bool
    frame_pairs: list[MatchedFramePair]
    transformations: list[Transformation]
    audio_similarity: float | None = None

    @property
    def earlier(self) -> bool:
        return self.other_uploaded_at < self.uploaded_at

    @property
    def similarity_percent(self) -> int:
        return round(self.similarity * 100)

    @property
    def audio_similarity_percent(self) -> int | None:
        return None if self.audio_similarity is None else round(self.audio_similarity * 100)

    @property
    def strip(self) -> list[MatchedFramePair]:
        """Return the pairs shown side by side: each picture pair once."""
        return match_evidence.strip(self.frame_pairs)


@dataclass(frozen=True)
class CaseSeenBefore:
    """Every other visible case holding footage of one case, earliest submission first."""

    entries: list[SeenBeforeEntry]

    def __bool__(self) -> bool:
        return bool(self.entries)

    @property
    def cases(self) -> list[Case]:
        return list({entry.case.pk: entry.case for entry in self.entries}.values())

    @property
    def any_earlier(self) -> bool:
        return any(entry.earlier for entry in self.entries)


def case_summary(case: Case) -> dict[str, Any]:
    """Return how another case is named where footage was seen before: id, title and verdict."""
    return {"id": case.pk, "title": case.title, "verdict": case.verdict or ""}


def case_summaries(*, case_ids: Any) -> dict[int, dict[str, Any]]:
    """Return ``case_summary`` of each case by id; the caller has checked that the user may see them."""
    return {case.pk: case_summary(case) for case in Case.objects.filter(pk__in=case_ids)}


def case_seen_before_for_user(*, case: Case, user: Any) -> CaseSeenBefore:
    """Return the other cases this user may see that hold this case's footage, with matched keyframes.

    Exact duplicates (same SHA-256) and near duplicates (stored matches) count, as
    ``verify.similarity.matching.seen_before`` finds them. A case the user may not see is left
    out entirely, so nothing built from this hints that it exists. A fixed number of queries.
    """
    visible_ids = case_list_for_user(user=user).values("pk")
    if not Case.objects.filter(pk=case.pk, pk__in=visible_ids).exists():
        return CaseSeenBefore(entries=[])
    items = {item.pk: item for item in MediaItem.objects.filter(case=case)}
    found = matching.seen_before(media_items=items.values(), visible_case_ids=visible_ids)
    if not found:
        return CaseSeenBefore(entries=[])
    other_ids = {entry["media_item"] for entry in found}
    found_case_ids = {entry["case_id"] for entry in found}
    cases = {c.pk: c for c in Case.objects.filter(pk__in=found_case_ids).filter(pk__in=visible_ids)}
    stored = {
        (match.media_item_id, match.other_id): match
        for match in MediaMatch.objects.filter(media_item__in=items.keys(), other__in=other_ids)
    }
    keyframes = match_evidence.keyframe_index({*items, *other_ids})
    stills = match_evidence.still_ids(keyframes)
    entries = []
    for entry in found:
        other_case = cases.get(entry["case_id"])
        if other_case is None:
            continue
        item_id, other_id = entry["media_item_matched"], entry["media_item"]
        match = stored.get((item_id, other_id))
        times: list[tuple[float, float]] = [(a, b) for a, b in match.frame_pairs] if match is not None else []
        if not times and entry["exact"]:
            # The same bytes decode to the same keyframes: show them at the same moments.
            times = [(t, t) for i, t in keyframes if i == item_id and (other_id, t) in keyframes]
        pairs = match_evidence.frame_pairs(media_item_id=item_id, other_id=other_id, times=times, keyframes=keyframes)
        entries.append(
            SeenBeforeEntry(
                case=other_case,
                other_media_item_id=other_id,
                other_uploaded_at=entry["uploaded_at"],
                media_item_id=item_id,
                uploaded_at=items[item_id].uploaded_at,
                exact=entry["exact"],
                similarity=entry["similarity"],
                matched_frame_count=entry["matched_frame_count"] or len(pairs),
                mirrored=entry["mirrored"],
                frame_pairs=pairs,
                transformations=[] if match is None else match_evidence.transformations_of(match, stills=stills),
                audio_similarity=None if match is None else match.audio_similarity,
            )
        )
    return CaseSeenBefore(entries=entries)


def case_seen_before_exists(*, user: Any) -> Exists:
    """Return an expression, per case, for: some footage of it is also in another case this user may see."""
    visible_ids = case_list_for_user(user=user).values("pk")
    same_bytes = MediaItem.objects.filter(sha256=OuterRef("sha256"), case__in=visible_ids).exclude(
        case=OuterRef("case")
    )
    near = MediaMatch.objects.filter(media_item=OuterRef("pk"), other__case__in=visible_ids).exclude(
        other__case=OuterRef("case")
    )
    return Exists(MediaItem.objects.filter(case=OuterRef("pk")).filter(Exists(same_bytes) | Exists(near)))


def case_seen_before_first(*, user: Any) -> Subquery:
    """Return an expression, per case, for the id of the case this user may see that first held its footage."""
    visible_ids = case_list_for_user(user=user).values("pk")
    near = MediaMatch.objects.filter(media_item__case=OuterRef(OuterRef("pk")), other=OuterRef("pk"))
    others = (
        MediaItem.objects.filter(case__in=visible_ids)
        .exclude(case=OuterRef("pk"))
        .filter(Q(sha256__in=MediaItem.objects.filter(case=OuterRef(OuterRef("pk"))).values("sha256")) | Exists(near))
        .order_by("uploaded_at", "id")
    )
    return Subquery(others.values("case_id")[:1])


def case_desk_list_seen_before_for_user(*, user: Any) -> QuerySet[Case]:
    """Return the desk's case list, each case annotated with ``seen_before`` and ``seen_before_case_id``.

    Both come from the one query for the page, with no extra query per case.
    """
    return case_desk_list_for_user(user=user).annotate(
        seen_before=case_seen_before_exists(user=user), seen_before_case_id=case_seen_before_first(user=user)
    )


def case_list_filter_seen_before(*, cases: QuerySet[Case], user: Any, seen: bool) -> QuerySet[Case]:
    """Return the cases whose footage is (or is not) also in another case this user may see."""
    exists = case_seen_before_exists(user=user)
    return cases.filter(exists if seen else ~exists)
