"""The sun for chronolocation: for any place and time, and for a case's claimed place and date."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from verify import sun
from workflows import chronolocation, selectors


class SunQuerySerializer(serializers.Serializer[Any]):
    """A place and a local date, with an optional local time and zone."""

    latitude = serializers.FloatField(min_value=-90, max_value=90)
    longitude = serializers.FloatField(min_value=-180, max_value=180)
    date = serializers.DateField(help_text="Local date at the place, YYYY-MM-DD.")
    time = serializers.TimeField(
        required=False, allow_null=True, help_text="Local time at the place, HH:MM; without it, only the day chart."
    )
    zone = serializers.CharField(
        required=False, allow_blank=True, max_length=64,
        help_text="IANA time zone, e.g. Europe/Kyiv; by default the zone of the coordinates.",
    )  # fmt: skip


def sun_answer(data: dict[str, Any]) -> dict[str, Any]:
    """Return the sun for a validated query: the day's course and, with a time, the position then."""
    try:
        place = sun.place_at(latitude=data["latitude"], longitude=data["longitude"], zone=data.get("zone") or "")
        moment = sun.local_moment(place=place, day=data["date"], clock=data["time"]) if data.get("time") else None
    except sun.SunInputError as exc:
        raise ValidationError({"zone" if "zone" in str(exc) else "time": [str(exc)]}) from exc
    zone_source = "given" if data.get("zone") else "from the coordinates"
    return {
        "place": chronolocation.place_body(place, source="given", zone_source=zone_source),
        "position": chronolocation.sun_position_body(sun.sun_position(place=place, at=moment)) if moment else None,
        "day": chronolocation.sun_day_body(sun.sun_day(place=place, day=data["date"])),
    }


class SunView(APIView):
    """Where the sun stood for any place and local time: nothing is saved."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[SunQuerySerializer], responses={200: OpenApiResponse(OpenApiTypes.OBJECT)})
    def get(self, request: Request) -> Response:
        query = SunQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(sun_answer(query.validated_data))


class CaseSunView(APIView):
    """Where the sun stood at a case's place on its claimed date and at each recorded capture time."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT)})
    def get(self, request: Request, case_id: int) -> Response:
        case = get_object_or_404(selectors.case_list_for_user(user=request.user), pk=case_id)
        return Response(chronolocation.case_sun_body(chronolocation.case_sun(case=case)))
