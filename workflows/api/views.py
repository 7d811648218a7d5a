"""REST endpoints for cases and their media: thin calls into selectors and services."""

from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from verify.api.serializers import AnalysisStatusSerializer, MediaItemDetailSerializer, MediaItemSerializer
from verify.models import Keyframe, MediaItem
from workflows import selectors, services
from workflows.api.serializers import CaseSerializer, MediaSubmissionSerializer
from workflows.models import Case

_IMAGE_RESPONSE = {(200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY, description="JPEG image")}


def _stored_file_response(name: str, *, content_type: str, attachment_name: str = "") -> FileResponse:
    if not name or not default_storage.exists(name):
        raise NotFound("The file is not available.")
    response = FileResponse(
        default_storage.open(name, "rb"),
        content_type=content_type,
        as_attachment=bool(attachment_name),
        filename=attachment_name,
    )
    response["Cache-Control"] = "private, max-age=3600"
    return response


class CaseFilter(filters.FilterSet):
    class Meta:
        model = Case
        fields = ["status"]


class CaseViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Cases: the claims under verification, with their media items."""

    serializer_class = CaseSerializer
    filterset_class = CaseFilter

    def get_queryset(self) -> Any:
        return selectors.case_list_for_user(user=self.request.user).select_related("created_by")

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = services.case_create(created_by=self.request.user, **serializer.validated_data)


class MediaItemFilter(filters.FilterSet):
    class Meta:
        model = MediaItem
        fields = ["state", "case", "sha256"]


class MediaItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Submitted media: upload, analysis status, metadata, keyframes and files."""

    filterset_class = MediaItemFilter
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    def get_queryset(self) -> Any:
        user = self.request.user
        if self.action == "retrieve":
            return selectors.media_item_detail_for_user(user=user).select_related("uploaded_by")
        if self.action == "status":
            return selectors.media_item_list_for_user(user=user).only(*AnalysisStatusSerializer.model_fields)
        return selectors.media_item_list_for_user(user=user).select_related("uploaded_by")

    def get_serializer_class(self) -> Any:
        return {
            "create": MediaSubmissionSerializer,
            "retrieve": MediaItemDetailSerializer,
            "status": AnalysisStatusSerializer,
        }.get(self.action, MediaItemSerializer)

    @extend_schema(
        request={"multipart/form-data": MediaSubmissionSerializer},
        responses={202: MediaItemSerializer},
        description="Upload a file to an existing case or open a new case with the claim fields.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        visible_cases = selectors.case_list_for_user(user=request.user)
        submission = MediaSubmissionSerializer(
            data=request.data, context={"request": request, "visible_cases": visible_cases}
        )
        submission.is_valid(raise_exception=True)
        item = services.case_media_submit(
            case=submission.validated_data.get("case"),
            claim_fields=submission.claim_fields(),
            upload=submission.validated_data["file"],
            submitted_by=request.user,
            mode=submission.validated_data.get("mode", ""),
        )
        body = MediaItemSerializer(item, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["status_url"])})

    @extend_schema(responses=AnalysisStatusSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request: Request, pk: str | None = None) -> Response:
        """Return where the analysis stands: small and fast, for polling."""
        return Response(AnalysisStatusSerializer(self.get_object()).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)})
    @action(detail=True, methods=["get"])
    def original(self, request: Request, pk: str | None = None) -> FileResponse:
        """Download the original file exactly as it was submitted."""
        item = self.get_object()
        return _stored_file_response(
            item.original.name, content_type="application/octet-stream", attachment_name=f"{item.sha256}.bin"
        )

    @extend_schema(responses=_IMAGE_RESPONSE)
    @action(detail=True, methods=["get"], url_path="contact-sheet", url_name="contact-sheet")
    def contact_sheet(self, request: Request, pk: str | None = None) -> FileResponse:
        """Return the contact sheet: every keyframe with its timestamp."""
        return _stored_file_response(self.get_object().contact_sheet.name, content_type="image/jpeg")


class KeyframeViewSet(viewsets.GenericViewSet):
    """Keyframe images, served only to users who may see their case."""

    queryset = Keyframe.objects.none()

    def get_queryset(self) -> Any:
        return selectors.keyframe_list_for_user(user=self.request.user)

    @extend_schema(responses=_IMAGE_RESPONSE)
    @action(detail=True, methods=["get"])
    def image(self, request: Request, pk: str | None = None) -> FileResponse:
        """Return the keyframe as a full-size upright JPEG."""
        return _stored_file_response(self.get_object().image.name, content_type="image/jpeg")
