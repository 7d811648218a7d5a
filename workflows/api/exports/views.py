"""The export endpoints: ask for a case report or evidence package, poll it, download it."""

from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from workflows import selectors
from workflows.api.permissions import HasWorkflowRole, NotCrossSite, valid_input
from workflows.exports.package import package_stream
from workflows.models import Export
from workflows.services.exports import export_download_record, export_request

_PERMISSIONS = [permissions.IsAuthenticated, HasWorkflowRole]
_CONTENT_TYPES = {
    Export.Kind.REPORT_PDF: "application/pdf",
    Export.Kind.REPORT_HTML: "text/html; charset=utf-8",
    Export.Kind.PACKAGE: "application/zip",
}
_EXTENSIONS = {Export.Kind.REPORT_PDF: "pdf", Export.Kind.REPORT_HTML: "html", Export.Kind.PACKAGE: "zip"}


class ExportInputSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=Export.Kind.choices)
    show_graphic = serializers.BooleanField(
        default=False, help_text="Show keyframes unblurred in the report; the choice is recorded."
    )


class ExportSerializer(serializers.ModelSerializer[Export]):
    requested_by = serializers.CharField(source="requested_by.get_username", read_only=True)
    status_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id", "case", "kind", "state", "progress_percent", "show_graphic", "requested_by", "created_at",
            "finished_at", "size_bytes", "sha256", "error_message", "status_url", "download_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_status_url(self, export: Export) -> str:
        return str(reverse("export-detail", args=[export.pk], request=self.context.get("request")))

    def get_download_url(self, export: Export) -> str | None:
        if export.state != Export.State.SUCCEEDED:
            return None
        return str(reverse("export-download", args=[export.pk], request=self.context.get("request")))


class CaseExportsView(APIView):
    """``POST /cases/{id}/exports/``: queue a report or package; ``GET``: the case's exports."""

    permission_classes = _PERMISSIONS

    def _case(self, request: Request, case_id: int) -> Any:
        return get_object_or_404(selectors.case_list_for_user(user=request.user), pk=case_id)

    @extend_schema(responses=ExportSerializer(many=True))
    def get(self, request: Request, case_id: int) -> Response:
        case = self._case(request, case_id)
        exports = selectors.export_list_for_user(user=request.user).filter(case=case)
        return Response(ExportSerializer(exports, many=True, context={"request": request}).data)

    @extend_schema(request=ExportInputSerializer, responses={202: ExportSerializer})
    def post(self, request: Request, case_id: int) -> Response:
        case = self._case(request, case_id)
        data = valid_input(ExportInputSerializer, request)
        export = export_request(
            case=case, kind=data["kind"], requested_by=request.user, show_graphic=data["show_graphic"]
        )
        body = ExportSerializer(export, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["status_url"])})


class ExportViewSet(viewsets.GenericViewSet):
    """A report or package: where its making stands, and the file once made."""

    permission_classes = _PERMISSIONS
    serializer_class = ExportSerializer

    def get_queryset(self) -> Any:
        return selectors.export_list_for_user(user=self.request.user)

    @extend_schema(responses=ExportSerializer)
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(ExportSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)})
    @action(detail=True, methods=["get"], permission_classes=[*_PERMISSIONS, NotCrossSite])
    def download(self, request: Request, pk: str | None = None) -> Any:
        """Download the report or the evidence package (streamed); the download is recorded."""
        export = self.get_object()
        if export.state != Export.State.SUCCEEDED:
            raise NotFound("The export is not ready.")
        filename = f"case-{export.case_id}-{export.kind.replace('_', '-')}-{export.pk}.{_EXTENSIONS[export.kind]}"
        if export.kind == Export.Kind.PACKAGE:
            stream = package_stream(export=export)
            response: Any = StreamingHttpResponse(stream, content_type=_CONTENT_TYPES[export.kind])
            response["Content-Length"] = str(len(stream))
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
        else:
            if not export.file or not default_storage.exists(export.file):
                raise NotFound("The file is not available.")
            response = FileResponse(
                default_storage.open(export.file, "rb"),
                content_type=_CONTENT_TYPES[export.kind],
                as_attachment=True,
                filename=filename,
            )
        # Evidence must not outlive the permission to see it in a browser or proxy cache.
        response["Cache-Control"] = "no-store"
        export_download_record(export=export, actor=request.user)
        return response
