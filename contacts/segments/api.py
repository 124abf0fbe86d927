"""REST endpoints for segments: CRUD, a preview of an unsaved rule tree (count and a
sample), the current members (cursor pages) and adding or removing static list members.
Thin: serializers check shapes, contacts.segments.membership writes."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from workspaces.access import get_owned_or_404
from workspaces.api_base import WorkspaceViewSet
from workspaces.models import Workspace

from ..models import Contact, Segment, SegmentKind, SegmentMembership
from . import membership, queries
from .compiler import matching_contacts
from .describe import describe_rules
from .rules import RuleError, validate_rules

SAMPLE_SIZE = 10
MAX_MEMBERS_PER_CALL = 1000


def _rule_error(exc: RuleError) -> ValidationError:
    """A 400 that says which condition is wrong: {"rules": [{"path": …, "message": …}]}."""
    errors = getattr(exc, "errors", None) or [(getattr(exc, "path", ""), " ".join(exc.messages))]
    return ValidationError(
        {"rules": [{"path": path, "message": message} for path, message in errors]}
    )


def _summary(workspace: Workspace, tree: Any) -> str:
    if not tree:
        return ""
    try:
        return describe_rules(workspace, tree)
    except (RuleError, KeyError, TypeError, ValueError):
        return ""


# --- serializers ------------------------------------------------------------------------


class SegmentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    summary = serializers.SerializerMethodField(help_text="The rules in plain words.")

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "rules",
            "summary",
            "member_count",
            "refreshed_at",
            "created_at",
            "updated_at",
        ]

    def get_summary(self, segment: Segment) -> str:
        return _summary(segment.workspace, segment.rules)


class SegmentInputSerializer(serializers.Serializer):
    """Shapes only; the rules are checked by contacts.segments.rules."""

    name = serializers.CharField(max_length=membership.NAME_LIMIT)
    description = serializers.CharField(allow_blank=True, required=False)
    kind = serializers.ChoiceField(choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    rules = serializers.JSONField(
        required=False, allow_null=True, help_text="The rule tree (dynamic segments)."
    )


class PreviewInputSerializer(serializers.Serializer):
    rules = serializers.JSONField(help_text="A rule tree, not saved.")


class SegmentContactSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Contact
        fields = ["id", "email", "first_name", "last_name", "status"]


class SegmentMemberSerializer(serializers.ModelSerializer):
    contact = SegmentContactSerializer(read_only=True)

    class Meta:
        model = SegmentMembership
        fields = ["contact", "entered_at"]


class MembersInputSerializer(serializers.Serializer):
    contacts = serializers.ListField(
        child=serializers.CharField(),
        allow_empty=False,
        max_length=MAX_MEMBERS_PER_CALL,
        help_text="Contact ids or email addresses.",
    )


PREVIEW_RESULT = inline_serializer(
    "SegmentPreview",
    {
        "count": serializers.IntegerField(),
        "summary": serializers.CharField(),
        "sample": SegmentContactSerializer(many=True),
    },
)
MEMBERS_RESULT = inline_serializer(
    "SegmentMembersChanged",
    {
        "changed": serializers.IntegerField(),
        "member_count": serializers.IntegerField(),
        "not_found": serializers.ListField(child=serializers.CharField()),
    },
)


# --- the viewset ------------------------------------------------------------------------

INPUTS: dict[str, type[serializers.Serializer]] = {
    "create": SegmentInputSerializer,
    "partial_update": SegmentInputSerializer,
    "preview": PreviewInputSerializer,
    "members_add": MembersInputSerializer,
    "members_remove": MembersInputSerializer,
}


class _MembersNewestFirst:
    """What the cursor paginator reads the order of a segment's members from."""

    ordering = ("-entered_at", "-id")


class SegmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceViewSet):
    """Segments by name. Dynamic segments follow their rules; static lists are filled with
    members/add and members/remove."""

    serializer_class = SegmentSerializer
    model = Segment
    ordering = ("name", "id")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        """What the browsable API's form shows: the input of a write, else a segment."""
        if self.request is not None and self.request.method in ("POST", "PATCH"):
            return INPUTS.get(self.action, SegmentSerializer)
        return SegmentSerializer

    def workspace_queryset(self, workspace: Workspace) -> QuerySet[Segment]:
        return Segment.objects.for_workspace(workspace).select_related("workspace")

    @extend_schema(request=SegmentInputSerializer, responses={201: SegmentSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = _valid(SegmentInputSerializer(data=request.data))
        try:
            segment = membership.create_segment(
                workspace=request.workspace,
                name=data["name"],
                description=data.get("description", ""),
                kind=data["kind"],
                rules=data.get("rules"),
            )
        except RuleError as exc:
            raise _rule_error(exc) from exc
        return Response(self._output(segment), status=status.HTTP_201_CREATED)

    @extend_schema(request=SegmentInputSerializer, responses=SegmentSerializer)
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        segment = self.get_object()
        data = _valid(SegmentInputSerializer(data=request.data, partial=True))
        if "kind" in request.data and data["kind"] != segment.kind:
            raise ValidationError({"kind": ["A segment keeps its kind; create a new one."]})
        if "rules" in data and data["rules"] is None and segment.kind == SegmentKind.DYNAMIC:
            raise ValidationError({"rules": ["A dynamic segment needs rules."]})
        try:
            membership.update_segment(
                workspace=request.workspace,
                segment=segment,
                name=data.get("name"),
                description=data.get("description"),
                rules=data.get("rules"),
            )
        except RuleError as exc:
            raise _rule_error(exc) from exc
        return Response(self._output(segment))

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        membership.delete_segment(workspace=request.workspace, segment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=PreviewInputSerializer, responses=PREVIEW_RESULT)
    @action(detail=False, methods=["post"])
    def preview(self, request: Request, **kwargs: Any) -> Response:
        """How many contacts an unsaved rule tree matches, and ten of them."""
        workspace = request.workspace
        data = _valid(PreviewInputSerializer(data=request.data))
        try:
            rules = validate_rules(workspace, data["rules"])
        except RuleError as exc:
            raise _rule_error(exc) from exc
        count, sample = queries.count_and_sample(matching_contacts(workspace, rules), SAMPLE_SIZE)
        return Response(
            {
                "count": count,
                "summary": _summary(workspace, rules),
                "sample": SegmentContactSerializer(sample, many=True).data,
            }
        )

    @extend_schema(responses=SegmentMemberSerializer(many=True))
    @action(detail=True, methods=["get"])
    def members(self, request: Request, **kwargs: Any) -> Response:
        """The current members, the latest to enter first (cursor pages)."""
        segment = get_owned_or_404(Segment, request.workspace, kwargs["public_id"])
        rows = queries.current_members(request.workspace, segment).select_related("contact")
        page = self.paginator.paginate_queryset(rows, request, view=_MembersNewestFirst())
        return self.paginator.get_paginated_response(SegmentMemberSerializer(page, many=True).data)

    @extend_schema(request=MembersInputSerializer, responses=MEMBERS_RESULT)
    @action(detail=True, methods=["post"], url_path="members/add", url_name="members-add")
    def members_add(self, request: Request, **kwargs: Any) -> Response:
        """Add contacts (ids or email addresses) to a static list."""
        return self._change_members(request, kwargs["public_id"], membership.add_to_static)

    @extend_schema(request=MembersInputSerializer, responses=MEMBERS_RESULT)
    @action(detail=True, methods=["post"], url_path="members/remove", url_name="members-remove")
    def members_remove(self, request: Request, **kwargs: Any) -> Response:
        """Take contacts (ids or email addresses) off a static list."""
        return self._change_members(request, kwargs["public_id"], membership.remove_from_static)

    def _change_members(self, request: Request, public_id: Any, change: Any) -> Response:
        workspace = request.workspace
        segment = get_owned_or_404(Segment, workspace, public_id)
        if segment.kind != SegmentKind.STATIC:
            raise ValidationError(
                {"detail": [f"“{segment.name}” is a dynamic segment: its rules pick its members."]}
            )
        data = _valid(MembersInputSerializer(data=request.data))
        ids, missing = queries.contacts_by_reference(workspace, data["contacts"])
        changed = change(workspace=workspace, segment=segment, contact_ids=ids)
        return Response(
            {"changed": len(changed), "member_count": segment.member_count, "not_found": missing}
        )

    def _output(self, segment: Segment) -> dict[str, Any]:
        return SegmentSerializer(
            self.workspace_queryset(self.request.workspace).get(pk=segment.pk)
        ).data


def _valid(serializer: serializers.Serializer) -> dict[str, Any]:
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
