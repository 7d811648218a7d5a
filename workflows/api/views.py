"""REST endpoints for cases and their media: thin calls into selectors and services."""

from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.http import FileResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import authentication, mixins, parsers, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from verify.api import similarity as similarity_api
from verify.api.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from verify.api.serializers import (
    AnalysisStatusSerializer,
    MediaItemDetailSerializer,
    MediaItemSerializer,
    analysis_status_body,
)
from verify.models import Keyframe, MediaItem
from workflows import polling, selectors, services
from workflows.api.serializers import (
    AssignmentInputSerializer,
    AuditEventSerializer,
    CaseDetailSerializer,
    CaseSerializer,
    ChecklistItemSerializer,
    ChecklistUpdateSerializer,
    MediaSubmissionSerializer,
    NoteInputSerializer,
    NoteSerializer,
    TransitionInputSerializer,
)
from workflows.models import Case, ChecklistItem

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


def request_is_cross_site(request: Request) -> bool:
    """Return whether the browser sent this request on another site's behalf.

    ``Sec-Fetch-Site`` decides when the browser sends it: only the service's own pages
    (``same-origin``) and a typed or bookmarked address (``none``) count as this site. Older
    browsers send no such header; then an ``Origin`` or ``Referer`` of another host decides.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if fetch_site:
        return fetch_site not in ("same-origin", "none")
    for header in ("Origin", "Referer"):
        value = request.headers.get(header, "").strip()
        if value:
            return value == "null" or urlsplit(value).netloc.lower() != request.get_host().lower()
    return False


class NotCrossSite(permissions.BasePermission):
    """Evidence files go to a logged-in browser only when it asks on the service's own behalf.

    A link or image on another site would otherwise make a reviewer's browser fetch an original
    with their session, and record the download in their name. Token clients send no cookies
    and are not affected.
    """

    message = "Evidence files are not sent to requests from another site; open the link from the desk."
    code = "cross_site_request"

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.successful_authenticator, authentication.SessionAuthentication):
            return True
        return not request_is_cross_site(request)


class HasWorkflowRole(permissions.BasePermission):
    """Only people with a role (analyst, reviewer, lead) may open cases or submit media.

    Actions on one case need no check here: a case the user may not see answers 404 first,
    and the workflow services check the role each move needs.
    """

    message = "Your account has no role in this service; ask a lead to give you one."

    def has_permission(self, request: Request, view: Any) -> bool:
        return getattr(view, "action", None) != "create" or bool(selectors.user_roles(request.user))


class CaseFilter(filters.FilterSet):
    # By id, not as a choice of users: an unknown id must answer like a user with no cases
    # (an empty list), not with a 400 that tells which ids exist.
    assignee = filters.NumberFilter(field_name="assignee")

    class Meta:
        model = Case
        fields = ["status", "verdict", "assignee"]


class CaseViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Cases: the claims under verification, their media, review and history."""

    filterset_class = CaseFilter
    permission_classes = [permissions.IsAuthenticated, HasWorkflowRole]

    def get_queryset(self) -> Any:
        if self.action == "list":
            return selectors.case_list_for_user(user=self.request.user)
        return selectors.case_detail_for_user(user=self.request.user)

    def get_serializer_class(self) -> Any:
        return CaseSerializer if self.action in ("list", "create") else CaseDetailSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "visible_case_ids": _visible_case_ids(self.request)}

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = services.case_create(created_by=self.request.user, **serializer.validated_data)

    def _detail(self, request: Request, pk: Any, *, status_code: int = status.HTTP_200_OK) -> Response:
        case = selectors.case_detail_for_user(user=request.user).get(pk=pk)
        context = {"request": request, "visible_case_ids": _visible_case_ids(request)}
        return Response(CaseDetailSerializer(case, context=context).data, status=status_code)

    @extend_schema(request=TransitionInputSerializer, responses=CaseDetailSerializer)
    @action(detail=True, methods=["post"])
    def transitions(self, request: Request, pk: str | None = None) -> Response:
        """Move the case to another status (take, propose, approve, send back, reopen, hold)."""
        case = self.get_object()
        data = _valid(TransitionInputSerializer, request)
        services.case_transition(
            case=case,
            to=data["to"],
            actor=request.user,
            verdict=data.get("verdict", ""),
            rationale=data.get("rationale", ""),
            note=data.get("note", ""),
        )
        return self._detail(request, case.pk)

    @extend_schema(request=NoteInputSerializer, responses={200: NoteSerializer(many=True), 201: NoteSerializer})
    @action(detail=True, methods=["get", "post"])
    def notes(self, request: Request, pk: str | None = None) -> Response:
        """List every version of every note, or add a note (``replaces`` writes a new version)."""
        case = self.get_object()
        if request.method == "GET":
            return Response(NoteSerializer(selectors.note_versions(case=case), many=True).data)
        data = _valid(NoteInputSerializer, request, context={"case": case})
        if data.get("replaces") is not None:
            note = services.note_edit(note=data["replaces"], author=request.user, body=data["body"])
        else:
            note = services.note_add(
                case=case,
                author=request.user,
                body=data["body"],
                media_item=data.get("media_item"),
                keyframe=data.get("keyframe"),
                timestamp_s=data.get("timestamp_s"),
            )
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AssignmentInputSerializer, responses=CaseDetailSerializer)
    @action(detail=True, methods=["post"])
    def assignment(self, request: Request, pk: str | None = None) -> Response:
        """Assign a reviewer to the case (leads only); reassignment keeps the history."""
        case = self.get_object()
        # Who may assign is checked before the username, so that nobody else learns which exist.
        services.case_assign_check_actor(actor=request.user)
        data = _valid(AssignmentInputSerializer, request)
        assignee = get_user_model().objects.filter(username=data["assignee"], is_active=True).first()
        if assignee is None:
            raise ValidationError({"assignee": ["No active user has this username."]})
        services.case_assign(case=case, assignee=assignee, actor=request.user)
        return self._detail(request, case.pk)

    @extend_schema(request=ChecklistUpdateSerializer, responses=ChecklistItemSerializer)
    @action(detail=True, methods=["patch"], url_path=r"checklist/(?P<item>[a-z_]+)", url_name="checklist-item")
    def checklist(self, request: Request, pk: str | None = None, item: str = "") -> Response:
        """Change one checklist item: state, finding, and coordinates for the location."""
        case = self.get_object()
        if item not in ChecklistItem.Key.values:
            raise NotFound(f"No checklist item {item!r}; the items are {', '.join(ChecklistItem.Key.values)}.")
        data = _valid(ChecklistUpdateSerializer, request)
        updated = services.checklist_update(case=case, key=item, actor=request.user, **data)
        return Response(ChecklistItemSerializer(updated).data)

    @extend_schema(responses=AuditEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Return the case's audit trail, oldest first."""
        events = selectors.case_history(case=self.get_object())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)


def _visible_case_ids(request: Request) -> Any:
    return selectors.case_list_for_user(user=request.user).values("pk")


def _valid(serializer_class: Any, request: Request, *, context: dict[str, Any] | None = None) -> Any:
    serializer = serializer_class(data=request.data, context=context or {})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


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
        return {**super().get_serializer_context(), "visible_case_ids": _visible_case_ids(self.request)}

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
        description="Upload a file to an existing case or open a new case with the claim fields.",
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
            upload=submission.validated_data["file"],
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
            request=request, media_item=self.get_object(), visible_case_ids=_visible_case_ids(request)
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
