"""REST endpoints for email templates and the brand kit: template CRUD with revisions,
render previews (of a saved template or of unsaved content, for a contact, an event or
the sample data), the checks a marketing send requires, and the brand kit with its logo.
Thin: serializers check shapes, campaigns.services compiles, checks and writes.

A template that does not compile is refused with 400 and nothing is saved, in one shape
for every endpoint that takes template content:

    {"subject": ["Subject, line 1, column 4: expected '}}', found end of file"],
     "blocks": ["Block 2 (button): url is required"],
     "problems": [{"field": "subject", "where": "Subject", "message": "expected …",
                   "line": 1, "column": 4}, …]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from contacts.models import Contact
from workspaces.access import get_owned_or_404
from workspaces.api_base import WorkspaceViewSet
from workspaces.models import ApiKey, Role, Workspace

from . import gallery, services
from .models import (
    FONT_CHOICES,
    BrandKit,
    EmailTemplate,
    TemplateKind,
    TemplatePurpose,
    TemplateRevision,
)
from .rendering.compile import Problem, TemplateContent, TemplateInvalid
from .rendering.context import event_data

UNKNOWN_FIELD = "Unknown field."
# Where a compile problem is reported: the template field the user has to fix.
PROBLEM_FIELDS = {"Subject": "subject", "Preheader": "preheader", "Kind": "kind"}


def _user(request: Request) -> Any:
    """Who a revision is credited to: the signed-in person, or nobody for an API key."""
    return None if isinstance(request.auth, ApiKey) else request.user


def _valid(serializer: serializers.Serializer) -> dict[str, Any]:
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _refuse_unknown(initial: Any, known: Iterable[str]) -> None:
    if isinstance(initial, Mapping):
        unknown = sorted(set(initial) - set(known))
        if unknown:
            raise ValidationError({key: [UNKNOWN_FIELD] for key in unknown})


# --- the error of a template that does not compile ----------------------------------------


class TemplateRejected(exceptions.APIException):
    """400 with field errors and the same problems as a list with line and column. The body
    is kept as built (DRF would turn the numbers into strings)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, problems: Iterable[Problem], kind: str) -> None:
        super().__init__()
        errors: dict[str, Any] = {}
        listed = []
        for problem in problems:
            field = _field_of(problem.where, kind)
            errors.setdefault(field, []).append(str(problem))
            listed.append(
                {
                    "field": field,
                    "where": problem.where,
                    "message": problem.message,
                    "line": problem.line,
                    "column": problem.column,
                }
            )
        self.detail = {**errors, "problems": listed}


def _field_of(where: str, kind: str) -> str:
    if where.startswith("Block"):
        return "blocks"
    body = "blocks" if kind == TemplateKind.BLOCKS else "source"
    return PROBLEM_FIELDS.get(where, body)  # "MJML", "HTML" and "Body" are the body


TEMPLATE_PROBLEMS = OpenApiResponse(
    inline_serializer(
        "TemplateProblems",
        {
            **{
                name: serializers.ListField(child=serializers.CharField(), required=False)
                for name in ("name", "purpose", "kind", "subject", "preheader", "blocks", "source")
            },
            "problems": inline_serializer(
                "TemplateProblem",
                {
                    "field": serializers.CharField(),
                    "where": serializers.CharField(),
                    "message": serializers.CharField(),
                    "line": serializers.IntegerField(allow_null=True),
                    "column": serializers.IntegerField(allow_null=True),
                },
                many=True,
                required=False,
            ),
        },
    ),
    description="Field errors; a template that does not compile also lists its problems "
    "with line and column. Nothing is saved.",
)


# --- serializers ------------------------------------------------------------------------


class EmailTemplateSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    revision = serializers.IntegerField(
        source="revision_number", read_only=True, help_text="The number of the current revision."
    )

    class Meta:
        model = EmailTemplate
        fields = [
            "id",
            "name",
            "purpose",
            "kind",
            "subject",
            "preheader",
            "blocks",
            "source",
            "starter",
            "revision",
            "archived_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


READ_ONLY_TEMPLATE_FIELDS = ("id", "starter", "revision", "archived_at", "created_at", "updated_at")


class TemplateInputSerializer(serializers.Serializer):
    """Shapes only: the content is checked by compiling it (campaigns.services)."""

    name = serializers.CharField(max_length=120)
    purpose = serializers.ChoiceField(choices=TemplatePurpose.choices, required=False)
    kind = serializers.ChoiceField(choices=TemplateKind.choices, required=False)
    subject = serializers.CharField(max_length=255, allow_blank=True, required=False)
    preheader = serializers.CharField(max_length=255, allow_blank=True, required=False)
    blocks = serializers.JSONField(
        required=False, help_text="The body of a blocks template: a list of blocks."
    )
    source = serializers.CharField(
        allow_blank=True,
        required=False,
        trim_whitespace=False,
        help_text="The body of an mjml or html template.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        # Read-only fields are ignored, so what GET returns can be sent back.
        _refuse_unknown(self.initial_data, [*self.fields, *READ_ONLY_TEMPLATE_FIELDS])
        return data


class TemplateUpdateSerializer(TemplateInputSerializer):
    """PUT replaces the whole template (an omitted preheader, blocks or source is
    emptied); PATCH changes what it sends."""

    purpose = serializers.ChoiceField(choices=TemplatePurpose.choices)
    kind = serializers.ChoiceField(choices=TemplateKind.choices)
    subject = serializers.CharField(max_length=255, allow_blank=True)
    archived = serializers.BooleanField(
        required=False, help_text="true archives the template, false brings it back."
    )
    note = serializers.CharField(
        max_length=200,
        allow_blank=True,
        required=False,
        help_text="Kept with the new revision, e.g. “Shorter subject”.",
    )


class EventInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, allow_blank=True, default="")
    properties = serializers.DictField(default=dict)
    occurred_at = serializers.DateTimeField(required=False, help_text="Now if left out.")


class RenderInputSerializer(serializers.Serializer):
    contact_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="Personalise for this contact."
    )
    event = EventInputSerializer(
        required=False,
        allow_null=True,
        help_text="The triggering event; else the contact's latest event, else the sample.",
    )
    sample = serializers.BooleanField(
        default=False, help_text="Personalise for the sample contact (the default)."
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        _refuse_unknown(self.initial_data, self.fields)
        if data.get("sample") and data.get("contact_id"):
            raise ValidationError({"sample": ["Give contact_id or sample, not both."]})
        return data


class UnsavedRenderSerializer(RenderInputSerializer):
    """Template content that is not saved, with the same options as a saved one."""

    purpose = serializers.ChoiceField(
        choices=TemplatePurpose.choices, default=TemplatePurpose.MARKETING
    )
    kind = serializers.ChoiceField(choices=TemplateKind.choices, default=TemplateKind.BLOCKS)
    subject = serializers.CharField(max_length=255, allow_blank=True, default="")
    preheader = serializers.CharField(max_length=255, allow_blank=True, default="")
    blocks = serializers.JSONField(default=list)
    source = serializers.CharField(allow_blank=True, trim_whitespace=False, default="")


CHECKS = inline_serializer(
    "TemplateCheckList",
    {
        "errors": serializers.ListField(child=serializers.CharField()),
        "warnings": serializers.ListField(child=serializers.CharField()),
    },
)
RENDERED = inline_serializer(
    "RenderedTemplate",
    {
        "subject": serializers.CharField(),
        "html": serializers.CharField(),
        "text": serializers.CharField(),
        "checks": CHECKS,
    },
)
SENDABLE = inline_serializer(
    "TemplateChecks",
    {
        "sendable": serializers.BooleanField(),
        "errors": serializers.ListField(child=serializers.CharField()),
        "warnings": serializers.ListField(child=serializers.CharField()),
    },
)


class RevisionSerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(
        source="created_by.email", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = TemplateRevision
        fields = [
            "number",
            "note",
            "created_by",
            "created_at",
            "kind",
            "subject",
            "preheader",
            "blocks",
            "source",
        ]
        read_only_fields = fields


class RestoreInputSerializer(serializers.Serializer):
    revision = serializers.IntegerField(min_value=1, help_text="The revision number to restore.")


class StarterSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    stage = serializers.CharField()
    description = serializers.CharField()
    purpose = serializers.CharField()
    subject = serializers.CharField()
    preheader = serializers.CharField()


class FromStarterSerializer(serializers.Serializer):
    starter = serializers.ChoiceField(choices=[s.key for s in gallery.STARTERS])
    name = serializers.CharField(max_length=120, required=False)


# --- templates --------------------------------------------------------------------------

TEMPLATE_FILTERS = [
    OpenApiParameter("kind", str, enum=TemplateKind.values),
    OpenApiParameter("purpose", str, enum=TemplatePurpose.values),
    OpenApiParameter(
        "archived", bool, description="true: only archived templates; false: only the others."
    ),
]
INPUTS: dict[str, type[serializers.Serializer]] = {
    "create": TemplateInputSerializer,
    "update": TemplateUpdateSerializer,
    "partial_update": TemplateUpdateSerializer,
    "render": RenderInputSerializer,
    "render_unsaved": UnsavedRenderSerializer,
    "restore": RestoreInputSerializer,
    "from_starter": FromStarterSerializer,
}
FILTER_CHOICES = {"kind": TemplateKind.values, "purpose": TemplatePurpose.values}
BOOLEAN_PARAM = {"true": True, "1": True, "false": False, "0": False}


class _TemplateSchema(AutoSchema):
    """The two render paths differ only by the id, which operation ids leave out."""

    def get_operation_id(self) -> str:
        operation_id = super().get_operation_id()
        if getattr(self.view, "action", None) == "render_unsaved":
            head, _, tail = operation_id.rpartition("render")
            return f"{head}render_unsaved{tail}"
        return operation_id


class _RevisionsNewestFirst:
    """What the cursor paginator reads the order of a template's revisions from."""

    ordering = ("-number", "-id")


class EmailTemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceViewSet):
    """Email templates by name. Every accepted change of content is a new revision; content
    that does not compile is refused and the template keeps its last good revision.
    Rendering is reading: viewers may preview."""

    serializer_class = EmailTemplateSerializer
    model = EmailTemplate
    ordering = ("name", "id")
    schema = _TemplateSchema()
    READ_ONLY_POSTS = ("render", "render_unsaved")

    @property
    def write_role(self) -> str:  # type: ignore[override]
        return Role.VIEWER if self.action in self.READ_ONLY_POSTS else Role.EDITOR

    def get_serializer_class(self) -> type[serializers.Serializer]:
        """What the browsable API's form shows: the input of a write, else a template."""
        if self.request is not None and self.request.method in ("POST", "PUT", "PATCH"):
            return INPUTS.get(self.action, EmailTemplateSerializer)
        return EmailTemplateSerializer

    def workspace_queryset(self, workspace: Workspace) -> QuerySet[EmailTemplate]:
        templates = EmailTemplate.objects.for_workspace(workspace)
        if self.action == "list":
            templates = self._filtered(templates)
        return templates

    def _filtered(self, templates: QuerySet[EmailTemplate]) -> QuerySet[EmailTemplate]:
        params = self.request.query_params
        for name, choices in FILTER_CHOICES.items():
            value = params.get(name, "")
            if value and value not in choices:
                raise ValidationError(
                    {name: [f"“{value}” is not a {name}; use one of: {', '.join(choices)}."]}
                )
            if value:
                templates = templates.filter(**{name: value})
        archived = params.get("archived", "")
        if archived:
            if archived.lower() not in BOOLEAN_PARAM:
                raise ValidationError({"archived": ["Use true or false."]})
            templates = templates.filter(archived_at__isnull=not BOOLEAN_PARAM[archived.lower()])
        return templates

    @extend_schema(parameters=TEMPLATE_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=TemplateInputSerializer,
        responses={201: EmailTemplateSerializer, 400: TEMPLATE_PROBLEMS},
    )
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = _valid(TemplateInputSerializer(data=request.data))
        try:
            template = services.create_template(request.workspace, user=_user(request), **data)
        except TemplateInvalid as invalid:
            kind = data.get("kind", TemplateKind.BLOCKS)
            raise TemplateRejected(invalid.problems, kind) from invalid
        return Response(EmailTemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=TemplateUpdateSerializer,
        responses={200: EmailTemplateSerializer, 400: TEMPLATE_PROBLEMS},
    )
    def update(self, request: Request, **kwargs: Any) -> Response:
        return self._change(request, partial=False)

    @extend_schema(
        request=TemplateUpdateSerializer,
        responses={200: EmailTemplateSerializer, 400: TEMPLATE_PROBLEMS},
    )
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        return self._change(request, partial=True)

    def _change(self, request: Request, *, partial: bool) -> Response:
        template = self.get_object()
        data = _valid(TemplateUpdateSerializer(data=request.data, partial=partial))
        archived, note = data.pop("archived", None), data.pop("note", "")
        if not partial:
            data = {"preheader": "", "blocks": [], "source": "", **data}
        with transaction.atomic():
            if data:
                try:
                    services.update_template(template, user=_user(request), note=note, **data)
                except TemplateInvalid as invalid:
                    kind = data.get("kind", template.kind)
                    raise TemplateRejected(invalid.problems, kind) from invalid
            if archived is not None and archived != (template.archived_at is not None):
                services.archive_template(template, archived)
        return Response(EmailTemplateSerializer(template).data)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        services.delete_template(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=RenderInputSerializer,
        responses={200: RENDERED, 400: TEMPLATE_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def render(self, request: Request, **kwargs: Any) -> Response:
        """The saved template personalised for a contact, an event or the sample data."""
        template = get_owned_or_404(EmailTemplate, request.workspace, kwargs["public_id"])
        options = _valid(RenderInputSerializer(data=request.data))
        contact, event = _render_inputs(request.workspace, options)
        result = services.template_preview(template, contact=contact, event=event)
        return _rendered(result, template.kind)

    @extend_schema(responses={200: StarterSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None)
    def starters(self, request: Request, **kwargs: Any) -> Response:
        """The gallery: starter templates for each stage of the customer journey."""
        return Response(StarterSerializer(gallery.STARTERS, many=True).data)

    @extend_schema(
        request=FromStarterSerializer,
        responses={201: EmailTemplateSerializer, 400: TEMPLATE_PROBLEMS},
    )
    @action(detail=False, methods=["post"], url_path="from-starter", url_name="from-starter")
    def from_starter(self, request: Request, **kwargs: Any) -> Response:
        """A new template from a gallery starter, on the workspace's brand kit."""
        data = _valid(FromStarterSerializer(data=request.data))
        template = gallery.create_from_starter(
            request.workspace, data["starter"], name=data.get("name"), user=_user(request)
        )
        return Response(EmailTemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=UnsavedRenderSerializer,
        responses={200: RENDERED, 400: TEMPLATE_PROBLEMS},
    )
    @action(detail=False, methods=["post"], url_path="render", url_name="render-unsaved")
    def render_unsaved(self, request: Request, **kwargs: Any) -> Response:
        """Content that is not saved, compiled and personalised as the editor previews it."""
        data = _valid(UnsavedRenderSerializer(data=request.data))
        content = TemplateContent(
            kind=data["kind"],
            subject=data["subject"],
            preheader=data["preheader"],
            blocks=data["blocks"],
            source=data["source"],
        )
        contact, event = _render_inputs(request.workspace, data)
        result = services.preview(
            request.workspace, content, purpose=data["purpose"], contact=contact, event=event
        )
        return _rendered(result, content.kind)

    @extend_schema(responses=SENDABLE)
    @action(detail=True, methods=["get"])
    def checks(self, request: Request, **kwargs: Any) -> Response:
        """Whether the template may be used in a send (a marketing send needs an unsubscribe
        link and the postal address), and the warnings that do not block it."""
        template = get_owned_or_404(EmailTemplate, request.workspace, kwargs["public_id"])
        try:
            report = services.ensure_sendable(template)
        except services.TemplateNotSendable as refused:
            warnings = services.template_preview(template).report.warnings
            return Response({"sendable": False, "errors": refused.messages, "warnings": warnings})
        return Response({"sendable": True, "errors": [], "warnings": report.warnings})

    @extend_schema(responses=RevisionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def revisions(self, request: Request, **kwargs: Any) -> Response:
        """Every saved revision with its content, the newest first (cursor pages)."""
        template = get_owned_or_404(EmailTemplate, request.workspace, kwargs["public_id"])
        revisions = (
            TemplateRevision.objects.for_workspace(request.workspace)
            .filter(template=template)
            .select_related("created_by")
        )
        page = self.paginator.paginate_queryset(revisions, request, view=_RevisionsNewestFirst())
        return self.paginator.get_paginated_response(RevisionSerializer(page, many=True).data)

    @extend_schema(
        request=RestoreInputSerializer,
        responses={200: EmailTemplateSerializer, 400: TEMPLATE_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, **kwargs: Any) -> Response:
        """Make an earlier revision's content current again, as a new revision."""
        workspace = request.workspace
        template = get_owned_or_404(EmailTemplate, workspace, kwargs["public_id"])
        number = _valid(RestoreInputSerializer(data=request.data))["revision"]
        revision = (
            TemplateRevision.objects.for_workspace(workspace)
            .filter(template=template, number=number)
            .first()
        )
        if revision is None:
            raise ValidationError({"revision": [f"This template has no revision {number}."]})
        try:
            services.restore_revision(template, revision, user=_user(request))
        except TemplateInvalid as invalid:
            raise TemplateRejected(invalid.problems, revision.kind) from invalid
        return Response(EmailTemplateSerializer(template).data)

    @extend_schema(request=None, responses={201: EmailTemplateSerializer})
    @action(detail=True, methods=["post"])
    def duplicate(self, request: Request, **kwargs: Any) -> Response:
        """A copy named “<name> (copy)”, starting its own revision history."""
        template = get_owned_or_404(EmailTemplate, request.workspace, kwargs["public_id"])
        try:
            copy = services.duplicate_template(template, user=_user(request))
        except TemplateInvalid as invalid:
            raise TemplateRejected(invalid.problems, template.kind) from invalid
        return Response(EmailTemplateSerializer(copy).data, status=status.HTTP_201_CREATED)


def _render_inputs(
    workspace: Workspace, options: Mapping[str, Any]
) -> tuple[Contact | None, dict | None]:
    """The contact (one of this workspace's, or a 400 that reveals nothing) and the event."""
    contact = None
    if options.get("contact_id"):
        contact = (
            Contact.objects.for_workspace(workspace)
            .filter(public_id=options["contact_id"])
            .select_related("lifecycle_stage", "persona")
            .first()
        )
        if contact is None:
            raise ValidationError({"contact_id": ["This workspace has no contact with this id."]})
    event = options.get("event")
    if event is not None:
        occurred_at = event.get("occurred_at") or timezone.now()
        event = event_data(event["name"], event["properties"], occurred_at)
    return contact, event


def _rendered(result: services.Preview, kind: str) -> Response:
    if result.problems:
        raise TemplateRejected(result.problems, kind)
    if result.email is None:
        raise ValidationError({"detail": f"The email could not be rendered: {result.render_error}"})
    return Response(
        {
            "subject": result.email.subject,
            "html": result.email.html,
            "text": result.email.text,
            "checks": {"errors": result.report.errors, "warnings": result.report.warnings},
        }
    )


# --- brand kit --------------------------------------------------------------------------


FONT_HELP = "One of: " + ", ".join(key for key, _ in FONT_CHOICES)


class BrandKitSerializer(serializers.ModelSerializer):
    # Plain text rather than an enum: two enums of the same choices confuse the schema.
    font = serializers.CharField(read_only=True, help_text=FONT_HELP)
    heading_font = serializers.CharField(read_only=True, help_text=FONT_HELP)
    logo_url = serializers.SerializerMethodField(
        help_text="Where emails load the logo from; empty without a logo."
    )

    class Meta:
        model = BrandKit
        fields = [
            "primary_color",
            "text_color",
            "background_color",
            "content_background_color",
            "button_color",
            "button_text_color",
            "font",
            "heading_font",
            "footer_text",
            "social_links",
            "logo_url",
            "logo_width",
            "logo_height",
            "logo_alt",
            "updated_at",
        ]
        read_only_fields = fields

    def get_logo_url(self, kit: BrandKit) -> str:
        return services.logo_url(kit)


READ_ONLY_BRAND_FIELDS = ("logo_url", "logo_height", "updated_at")


class BrandKitInputSerializer(serializers.Serializer):
    """Shapes only: colours, fonts, the logo width and social links are checked by
    campaigns.services.update_brand_kit."""

    primary_color = serializers.CharField(required=False, help_text="#rrggbb")
    text_color = serializers.CharField(required=False, help_text="#rrggbb")
    background_color = serializers.CharField(required=False, help_text="#rrggbb")
    content_background_color = serializers.CharField(required=False, help_text="#rrggbb")
    button_color = serializers.CharField(required=False, help_text="#rrggbb")
    button_text_color = serializers.CharField(required=False, help_text="#rrggbb")
    font = serializers.CharField(required=False, help_text=FONT_HELP)
    heading_font = serializers.CharField(required=False, help_text=FONT_HELP)
    footer_text = serializers.CharField(allow_blank=True, required=False)
    social_links = serializers.JSONField(
        required=False, help_text='A list of {"network": …, "url": "https://…"}.'
    )
    logo_width = serializers.IntegerField(required=False, help_text="Pixels, 40 to 600.")
    logo_alt = serializers.CharField(max_length=120, allow_blank=True, required=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        _refuse_unknown(self.initial_data, [*self.fields, *READ_ONLY_BRAND_FIELDS])
        return data


class LogoInputSerializer(serializers.Serializer):
    logo = serializers.FileField(help_text="PNG, JPEG or GIF, at most 1 MB, 16 to 2400 px a side.")
    alt = serializers.CharField(
        max_length=120, allow_blank=True, required=False, help_text="The logo's alt text."
    )


class BrandKitViewSet(WorkspaceViewSet):
    """GET and PATCH /brand-kit/: the workspace's one brand kit. Every template is dressed
    in it, so changing it (an admin's job) changes every template."""

    serializer_class = BrandKitSerializer
    model = BrandKit
    write_role = Role.ADMIN

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.request is not None and self.request.method == "PATCH":
            return BrandKitInputSerializer
        return BrandKitSerializer

    def retrieve(self, request: Request, **kwargs: Any) -> Response:
        return Response(BrandKitSerializer(services.brand_kit_for(request.workspace)).data)

    @extend_schema(request=BrandKitInputSerializer, responses=BrandKitSerializer)
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        data = _valid(BrandKitInputSerializer(data=request.data))
        kit = services.update_brand_kit(request.workspace, **data)
        return Response(BrandKitSerializer(kit).data)


class BrandLogoViewSet(WorkspaceViewSet):
    """PUT (or POST) /brand-kit/logo/ uploads the logo as multipart/form-data; DELETE
    removes it."""

    serializer_class = LogoInputSerializer
    model = BrandKit
    write_role = Role.ADMIN
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": LogoInputSerializer}, responses=BrandKitSerializer
    )
    def upload(self, request: Request, **kwargs: Any) -> Response:
        if "logo" not in request.FILES:
            raise ValidationError(
                {"logo": ["Send the image as a multipart/form-data file field named “logo”."]}
            )
        data = _valid(LogoInputSerializer(data=request.data))
        upload = data["logo"]
        if upload.size > services.LOGO_MAX_BYTES:  # refused before it is read into memory
            limit = services.LOGO_MAX_BYTES // (1024 * 1024)
            raise ValidationError(
                {"logo": [f"The logo is {upload.size / 1024:.0f} KB; the limit is {limit} MB."]}
            )
        kit = services.set_logo(request.workspace, upload.read(), alt=data.get("alt"))
        return Response(BrandKitSerializer(kit).data)

    @extend_schema(request=None, responses={204: None})
    def remove(self, request: Request, **kwargs: Any) -> Response:
        services.remove_logo(request.workspace)
        return Response(status=status.HTTP_204_NO_CONTENT)
