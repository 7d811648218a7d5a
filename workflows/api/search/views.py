"""GET /search/: one search over the cases the user may see, ranked, with the matching snippet."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from workflows import search
from workflows.models import Case, Status, Verdict


class SearchQuerySerializer(serializers.Serializer[Any]):
    """The words and the filters of a search."""

    q = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="Words, or a SHA-256 prefix.")
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    verdict = serializers.ChoiceField(choices=Verdict.choices, required=False)
    assignee = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    claimed_date_from = serializers.DateField(required=False)
    claimed_date_to = serializers.DateField(required=False)
    captured_from = serializers.DateTimeField(required=False, help_text="Creation time in the media metadata.")
    captured_to = serializers.DateTimeField(required=False)
    uploaded_from = serializers.DateTimeField(required=False)
    uploaded_to = serializers.DateTimeField(required=False)
    has_gps = serializers.BooleanField(required=False, allow_null=True, default=None)
    seen_before = serializers.BooleanField(required=False, allow_null=True, default=None)


class SearchResultSerializer(serializers.ModelSerializer[Case]):
    url = serializers.SerializerMethodField()
    rank = serializers.FloatField(source="search_rank", read_only=True)
    snippet = serializers.SerializerMethodField(help_text="HTML: the passage that matched, escaped, matches in <mark>.")

    class Meta:
        model = Case
        fields = ["id", "url", "title", "status", "verdict", "claimed_date", "created_at", "rank", "snippet"]
        read_only_fields = fields

    def get_url(self, case: Case) -> str:
        return reverse("case-detail", args=[case.pk], request=self.context.get("request"))

    def get_snippet(self, case: Case) -> str:
        return str(search.search_snippet(case, self.context.get("q", "")))

    def to_representation(self, case: Case) -> dict[str, Any]:
        # Every search serializes a page of up to 500 rows: the same fields, without DRF's walk
        # over them and a URL resolution per row (the router's detail URL is the list's plus the id).
        if "cases_url" not in self.context:
            self.context["cases_url"] = reverse("case-list", request=self.context.get("request"))
        fields = self.fields
        return {
            "id": case.pk,
            "url": f"{self.context['cases_url']}{case.pk}/",
            "title": case.title,
            "status": case.status,
            "verdict": case.verdict,
            "claimed_date": fields["claimed_date"].to_representation(case.claimed_date) if case.claimed_date else None,
            "created_at": fields["created_at"].to_representation(case.created_at),
            "rank": float(case.search_rank),  # type: ignore[attr-defined]
            "snippet": self.get_snippet(case),
        }


class SearchPageSerializer(serializers.Serializer[Any]):
    """One page of results; ``capped`` makes ``count`` a lower bound."""

    count = serializers.IntegerField(help_text="Cases ranked: all that match, or RANKED_MAX when capped.")
    capped = serializers.BooleanField(
        help_text=f"More than {search.RANKED_MAX:,} cases match: the newest {search.RANKED_MAX:,} of them were "
        "ranked, and count is a lower bound. Narrow the words or the filters to rank the rest."
    )
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SearchResultSerializer(many=True)


class SearchView(generics.GenericAPIView):  # type: ignore[type-arg]
    """Search titles, claims, places, source URLs, notes, text in keyframes, devices and SHA-256 prefixes."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = SearchResultSerializer

    @extend_schema(parameters=[SearchQuerySerializer], responses={200: SearchPageSerializer})
    def get(self, request: Request) -> Response:
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = dict(query.validated_data)
        q = data.pop("q", "")
        hits = search.case_search_for_user(user=request.user, q=q, filters=search.SearchFilters(**data))
        page: list[Case] | None = self.paginate_queryset(hits)  # type: ignore[arg-type]
        serializer = SearchResultSerializer(page, many=True, context={"request": request, "q": q})
        response = self.get_paginated_response(serializer.data)
        response.data = {"count": response.data["count"], "capped": hits.capped, **response.data}
        return response
