"""Serializers for cases, their review, and for submitting media to them."""

from typing import Any
from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from verify import ocr
from verify.models import Keyframe, MediaItem
from workflows.api.media.serializers import MediaItemSerializer
from workflows.api.similarity import SeenBeforeField
from workflows.models import AuditEvent, Case, ChecklistItem, Note, Status, Verdict
from workflows.services import allowed_moves_for

CLAIM_FIELDS = ("title", "claim", "source_url", "claimed_location", "claimed_date", "ocr_languages")


class UsernameField(serializers.CharField):
    """A user shown by username (read-only)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, user: Any) -> str:
        return str(user.get_username())


class CaseSerializer(serializers.ModelSerializer[Case]):
    url = serializers.HyperlinkedIdentityField(view_name="case-detail")
    created_by = UsernameField()
    assignee = UsernameField()
    media_items = MediaItemSerializer(many=True, read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "url",
            *CLAIM_FIELDS,
            "status",
            "verdict",
            "assignee",
            "created_by",
            "created_at",
            "updated_at",
            "media_items",
        ]
        read_only_fields = ["status", "verdict", "created_at", "updated_at"]


class ChecklistItemSerializer(serializers.ModelSerializer[ChecklistItem]):
    question = serializers.CharField(source="get_key_display", read_only=True)
    updated_by = UsernameField()

    class Meta:
        model = ChecklistItem
        fields = ["key", "question", "state", "finding", "latitude", "longitude", "updated_by", "updated_at"]
        read_only_fields = ["key", "question", "updated_by", "updated_at"]


class ChecklistUpdateSerializer(serializers.Serializer[Any]):
    state = serializers.ChoiceField(choices=ChecklistItem.State.choices, required=False)
    finding = serializers.CharField(required=False, allow_blank=True)
    latitude = serializers.FloatField(required=False, min_value=-90, max_value=90)
    longitude = serializers.FloatField(required=False, min_value=-180, max_value=180)


class NoteSerializer(serializers.ModelSerializer[Note]):
    author = UsernameField()
    replaced_by = serializers.SerializerMethodField()

    class Meta:
        model = Note
        fields = [
            "id",
            "author",
            "body",
            "media_item",
            "keyframe",
            "timestamp_s",
            "replaces",
            "replaced_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_replaced_by(self, note: Note) -> int | None:
        replacement = getattr(note, "replaced_by", None)
        return replacement.pk if replacement is not None else None


class NoteInputSerializer(serializers.Serializer[Any]):
    """A note on the case in the context (``case``): every id it refers to must be of that case.

    An id of another case answers exactly like an id that does not exist, so that a note cannot
    be used to learn which items, keyframes or notes exist elsewhere.
    """

    body = serializers.CharField()
    media_item = serializers.PrimaryKeyRelatedField(queryset=MediaItem.objects.none(), required=False, allow_null=True)
    keyframe = serializers.PrimaryKeyRelatedField(queryset=Keyframe.objects.none(), required=False, allow_null=True)
    timestamp_s = serializers.FloatField(required=False, allow_null=True, min_value=0)
    replaces = serializers.PrimaryKeyRelatedField(
        queryset=Note.objects.none(), required=False, allow_null=True, help_text="Write a new version of this note."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        case = self.context.get("case")
        if case is not None:
            self.fields["media_item"].queryset = MediaItem.objects.filter(case=case)  # type: ignore[attr-defined]
            self.fields["keyframe"].queryset = Keyframe.objects.filter(media_item__case=case)  # type: ignore[attr-defined]
            self.fields["replaces"].queryset = Note.objects.filter(case=case)  # type: ignore[attr-defined]


class TransitionInputSerializer(serializers.Serializer[Any]):
    to = serializers.ChoiceField(choices=Status.choices, help_text="The status to move the case to.")
    verdict = serializers.ChoiceField(choices=Verdict.choices, required=False, allow_blank=True)
    rationale = serializers.CharField(required=False, allow_blank=True)
    note = serializers.CharField(required=False, allow_blank=True, help_text="Why (sending back, reopening, holding).")


class AssignmentInputSerializer(serializers.Serializer[Any]):
    assignee = serializers.CharField(help_text="Username of the reviewer or lead to assign.")


class AllowedTransitionSerializer(serializers.Serializer[Any]):
    to = serializers.CharField(source="target")
    name = serializers.CharField()
    title = serializers.CharField(source="label")
    needs_verdict = serializers.BooleanField()
    needs_note = serializers.BooleanField()


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = UsernameField()

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "action", "object_type", "object_id", "before", "after"]
        read_only_fields = fields


class CaseDetailSerializer(CaseSerializer):
    """A case with everything a reviewer works with, and the moves this user may make now."""

    verdict_proposed_by = UsernameField()
    verdict_approved_by = UsernameField()
    checklist = ChecklistItemSerializer(many=True, read_only=True)
    notes = NoteSerializer(many=True, read_only=True, source="current_notes")
    allowed_transitions = serializers.SerializerMethodField()
    history_url = serializers.HyperlinkedIdentityField(view_name="case-history")
    seen_before = SeenBeforeField()

    class Meta(CaseSerializer.Meta):
        fields = [
            *CaseSerializer.Meta.fields,
            "held_from",
            "verdict_rationale",
            "verdict_proposed_by",
            "verdict_approved_by",
            "checklist",
            "notes",
            "allowed_transitions",
            "history_url",
            "seen_before",
        ]
        read_only_fields = [*CaseSerializer.Meta.read_only_fields, "held_from", "verdict_rationale"]

    @extend_schema_field(AllowedTransitionSerializer(many=True))
    def get_allowed_transitions(self, case: Case) -> list[dict[str, Any]]:
        request = self.context.get("request")
        if request is None:
            return []
        return [dict(AllowedTransitionSerializer(m).data) for m in allowed_moves_for(case=case, user=request.user)]


class CaseUpdateSerializer(serializers.Serializer[Any]):
    """What may change on a case once it is opened: the languages its keyframe text is read in."""

    ocr_languages = serializers.CharField(
        max_length=100, allow_blank=True, validators=[ocr.languages_validate],
        help_text='Tesseract languages joined by "+" (eng+ukr); empty: the server default. Applies to media '
        "analysed from now on; POST .../ocr/ reads the stored keyframes again.",
    )  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        fixed = sorted(set(self.initial_data) - set(self.fields))
        if fixed:
            message = "Cannot be changed once the case is opened; only ocr_languages can."
            raise serializers.ValidationError({name: [message] for name in fixed}, code="not_editable")
        return attrs


class KeyframeTextRereadSerializer(serializers.Serializer[Any]):
    languages = serializers.CharField(help_text="The languages the keyframes are read in.")
    media_items = serializers.ListField(
        child=serializers.IntegerField(), source="media_item_ids", help_text="The analysed media items queued."
    )


class MediaSubmissionSerializer(serializers.Serializer[Any]):
    """A file or a link, and either an existing case or the claim that opens a new one."""

    file = serializers.FileField(allow_empty_file=False, use_url=False, required=False)
    url = serializers.URLField(
        max_length=2000,
        required=False,
        help_text="Instead of a file: a post or media link (Telegram, YouTube, X, TikTok, a page, a file) to fetch.",
    )
    refetch = serializers.BooleanField(
        required=False, default=False, help_text="With url: fetch again even if this post was fetched before."
    )
    case = serializers.PrimaryKeyRelatedField(
        queryset=Case.objects.all(), required=False, allow_null=True, help_text="Add to this case."
    )
    title = serializers.CharField(max_length=300, required=False)
    claim = serializers.CharField(required=False, help_text="What the footage is said to show.")
    source_url = serializers.URLField(max_length=2000, required=False, allow_blank=True)
    claimed_location = serializers.CharField(max_length=300, required=False, allow_blank=True)
    claimed_date = serializers.DateField(required=False, allow_null=True)
    ocr_languages = serializers.CharField(
        max_length=100, required=False, allow_blank=True, validators=[ocr.languages_validate],
        help_text='Tesseract languages for text in keyframes, joined by "+"; the server default if omitted.',
    )  # fmt: skip
    mode = serializers.ChoiceField(
        choices=MediaItem.Mode.choices, required=False, help_text="Analysis mode; the server default if omitted."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        visible_cases = self.context.get("visible_cases")
        if visible_cases is not None:
            self.fields["case"].queryset = visible_cases  # type: ignore[attr-defined]

    def validate_url(self, value: str) -> str:
        if urlsplit(value).scheme.lower() not in ("http", "https"):
            raise serializers.ValidationError("Only http and https links can be fetched.", code="unsupported_url")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("file" in attrs) == ("url" in attrs):
            message = "Send either a file or a url." if "file" in attrs else "Send a file or a url."
            raise serializers.ValidationError({"file": [message]}, code="required")
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
