"""The media endpoints: submit, poll, read and download evidence."""

from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, parsers, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from verify.api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from verify.models import Keyframe, MediaItem
from workflows import polling, selectors, services
from workflows.api import similarity as similarity_api
from workflows.api.cases.serializers import (
    MediaSubmissionSerializer,
)
from workflows.api.media.serializers import (
    AnalysisStatusSerializer,
    MediaItemDetailSerializer,
    MediaItemSerializer,
    analysis_status_body,
)
from workflows.api.permissions import HasWorkflowRole, NotCrossSite, visible_case_ids

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
    # Evidence must not outlive the permission to see it in a browser or proxy cache.
    response["Cache-Control"] = "no-store"
    return response


_MEDIA_PERMISSIONS = [permissions.IsAuthenticated, HasWorkflowRole]


class MediaItemFilter(filters.FilterSet):
    # By id, not as a choice of cases: a case that does not exist answers like one the user
    # may not see, with an empty list.
    case = filters.NumberFilter(field_name="case")

    class Meta:
        model = MediaItem
        fields = ["state", "case", "sha256"]


class MediaItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Submitted media: upload, analysis status, metadata, keyframes and files."""

    filterset_class = MediaItemFilter
    permission_classes = _MEDIA_PERMISSIONS
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    def get_queryset(self) -> Any:
        user = self.request.user
        if self.action == "retrieve":
            return selectors.media_item_detail_for_user(user=user).select_related("uploaded_by")
        return selectors.media_item_list_for_user(user=user).select_related("uploaded_by")

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "visible_case_ids": visible_case_ids(self.request)}

    def filter_queryset(self, queryset: Any) -> Any:
        # The filters narrow lists; on one item they would only cost time on the polling path.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_serializer_class(self) -> Any:
        return {
            "create": MediaSubmissionSerializer,
            "retrieve": MediaItemDetailSerializer,
            "status": AnalysisStatusSerializer,
        }.get(self.action, MediaItemSerializer)

    @extend_schema(
        request={"multipart/form-data": MediaSubmissionSerializer},
        responses={202: MediaItemSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        description=(
            "Upload a file, or send a link (url) the worker fetches, to an existing case or to a new case opened "
            "with the claim fields."
        ),
    )
    @idempotent
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        visible_cases = selectors.case_list_for_user(user=request.user)
        submission = MediaSubmissionSerializer(
            data=request.data, context={"request": request, "visible_cases": visible_cases}
        )
        submission.is_valid(raise_exception=True)
        item = services.case_media_submit(
            case=submission.validated_data.get("case"),
            claim_fields=submission.claim_fields(),
            upload=submission.validated_data.get("file"),
            url=submission.validated_data.get("url", ""),
            refetch=submission.validated_data.get("refetch", False),
            submitted_by=request.user,
            mode=submission.validated_data.get("mode", ""),
        )
        item = selectors.media_item_list_for_user(user=request.user).select_related("uploaded_by").get(pk=item.pk)
        body = MediaItemSerializer(item, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["status_url"])})

    @extend_schema(responses=AnalysisStatusSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request: Request, pk: str | None = None) -> Response:
        """Return where the analysis stands: small and fast, for polling."""
        row = polling.media_item_status_for_user(user=request.user, pk=pk)
        if row is None:
            raise NotFound()
        return Response(analysis_status_body(row))

    @extend_schema(responses=similarity_api.MediaMatchSerializer(many=True))
    @action(detail=True, methods=["get"])
    def matches(self, request: Request, pk: str | None = None) -> Response:
        """List media items showing this item's footage, in cases the user may see."""
        return similarity_api.media_matches_response(
            request=request, media_item=self.get_object(), visible_case_ids=visible_case_ids(request)
        )

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)})
    @action(detail=True, methods=["get"], permission_classes=[*_MEDIA_PERMISSIONS, NotCrossSite])
    def original(self, request: Request, pk: str | None = None) -> FileResponse:
        """Download the original file exactly as it was submitted."""
        item = self.get_object()
        response = _stored_file_response(
            item.original.name, content_type="application/octet-stream", attachment_name=f"{item.sha256}.bin"
        )
        services.original_download_record(media_item=item, actor=request.user)
        return response

    @extend_schema(responses=_IMAGE_RESPONSE)
    @action(
        detail=True,
        methods=["get"],
        url_path="contact-sheet",
        url_name="contact-sheet",
        permission_classes=[*_MEDIA_PERMISSIONS, NotCrossSite],
    )
    def contact_sheet(self, request: Request, pk: str | None = None) -> FileResponse:
        """Return the contact sheet: every keyframe with its timestamp."""
        return _stored_file_response(self.get_object().contact_sheet.name, content_type="image/jpeg")


class KeyframeViewSet(viewsets.GenericViewSet):
    """Keyframe images, served only to users who may see their case."""

    queryset = Keyframe.objects.none()

    def get_queryset(self) -> Any:
        return selectors.keyframe_list_for_user(user=self.request.user)

    @extend_schema(responses=_IMAGE_RESPONSE)
    @action(detail=True, methods=["get"], permission_classes=[permissions.IsAuthenticated, NotCrossSite])
    def image(self, request: Request, pk: str | None = None) -> FileResponse:
        """Return the keyframe as a full-size upright JPEG."""
        return _stored_file_response(self.get_object().image.name, content_type="image/jpeg")
