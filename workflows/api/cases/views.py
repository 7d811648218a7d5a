"""The case endpoints: open, list and read cases, and work their review."""

from typing import Any

from django.contrib.auth import get_user_model
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from workflows import selectors, services
from workflows.api.cases.serializers import (
    AssignmentInputSerializer,
    AuditEventSerializer,
    CaseDetailSerializer,
    CaseSerializer,
    CaseUpdateSerializer,
    ChecklistItemSerializer,
    ChecklistUpdateSerializer,
    KeyframeTextRereadSerializer,
    NoteInputSerializer,
    NoteSerializer,
    TransitionInputSerializer,
)
from workflows.api.permissions import HasWorkflowRole, valid_input, visible_case_ids
from workflows.models import Case, ChecklistItem
from workflows.services import keyframe_text


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
        return {**super().get_serializer_context(), "visible_case_ids": visible_case_ids(self.request)}

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = services.case_create(created_by=self.request.user, **serializer.validated_data)

    def _detail(self, request: Request, pk: Any, *, status_code: int = status.HTTP_200_OK) -> Response:
        case = selectors.case_detail_for_user(user=request.user).get(pk=pk)
        context = {"request": request, "visible_case_ids": visible_case_ids(request)}
        return Response(CaseDetailSerializer(case, context=context).data, status=status_code)

    @extend_schema(request=CaseUpdateSerializer, responses=CaseDetailSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Change the languages the case's keyframe text is read in (all that changes once a case is opened)."""
        case = self.get_object()
        data = valid_input(CaseUpdateSerializer, request)
        keyframe_text.case_ocr_languages_set(case=case, ocr_languages=data["ocr_languages"], actor=request.user)
        return self._detail(request, case.pk)

    @extend_schema(request=None, responses={202: KeyframeTextRereadSerializer})
    @action(detail=True, methods=["post"])
    def ocr(self, request: Request, pk: str | None = None) -> Response:
        """Read the text in the keyframes of the case's analysed media again, in the case's languages now."""
        reread = keyframe_text.case_keyframe_text_reread(case=self.get_object(), actor=request.user)
        return Response(KeyframeTextRereadSerializer(reread).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=TransitionInputSerializer, responses=CaseDetailSerializer)
    @action(detail=True, methods=["post"])
    def transitions(self, request: Request, pk: str | None = None) -> Response:
        """Move the case to another status (take, propose, approve, send back, reopen, hold)."""
        case = self.get_object()
        data = valid_input(TransitionInputSerializer, request)
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
        data = valid_input(NoteInputSerializer, request, context={"case": case})
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
        data = valid_input(AssignmentInputSerializer, request)
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
        data = valid_input(ChecklistUpdateSerializer, request)
        updated = services.checklist_update(case=case, key=item, actor=request.user, **data)
        return Response(ChecklistItemSerializer(updated).data)

    @extend_schema(responses=AuditEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Return the case's audit trail, oldest first."""
        events = selectors.case_history(case=self.get_object())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)
