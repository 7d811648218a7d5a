"""Serializers for cases and for submitting media to them."""

from typing import Any

from rest_framework import serializers

from verify.api.serializers import MediaItemSerializer
from verify.models import MediaItem
from workflows.models import Case

CLAIM_FIELDS = ("title", "claim", "source_url", "claimed_location", "claimed_date")


class CaseSerializer(serializers.ModelSerializer[Case]):
    url = serializers.HyperlinkedIdentityField(view_name="case-detail")
    created_by = serializers.CharField(source="created_by.get_username", read_only=True)
    media_items = MediaItemSerializer(many=True, read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "url",
            *CLAIM_FIELDS,
            "status",
            "created_by",
            "created_at",
            "updated_at",
            "media_items",
        ]
        read_only_fields = ["status", "created_at", "updated_at"]


class MediaSubmissionSerializer(serializers.Serializer[Any]):
    """A file and either an existing case or the claim that opens a new one."""

    file = serializers.FileField(allow_empty_file=False, use_url=False)
    case = serializers.PrimaryKeyRelatedField(
        queryset=Case.objects.all(), required=False, allow_null=True, help_text="Add to this case."
    )
    title = serializers.CharField(max_length=300, required=False)
    claim = serializers.CharField(required=False, help_text="What the footage is said to show.")
    source_url = serializers.URLField(max_length=2000, required=False, allow_blank=True)
    claimed_location = serializers.CharField(max_length=300, required=False, allow_blank=True)
    claimed_date = serializers.DateField(required=False, allow_null=True)
    mode = serializers.ChoiceField(
        choices=MediaItem.Mode.choices, required=False, help_text="Analysis mode; the server default if omitted."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        case_field = self.fields["case"]
        visible_cases = self.context.get("visible_cases")
        if visible_cases is not None:
            case_field.queryset = visible_cases  # type: ignore[attr-defined]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("case") is None:
            missing = [name for name in ("title", "claim") if not attrs.get(name)]
            if missing:
                raise serializers.ValidationError(
                    {name: ["Required to open a new case when no case is given."] for name in missing}
                )
        return attrs

    def claim_fields(self) -> dict[str, Any]:
        """Return the claim fields sent, for opening a case."""
        return {name: self.validated_data[name] for name in CLAIM_FIELDS if name in self.validated_data}
