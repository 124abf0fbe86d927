"""The transactional API: `POST /api/v1/messages/` sends one templated transactional email
(an order confirmation, a password reset) to one person, creating or updating the contact,
and `GET /api/v1/messages/<id>/` tells what became of a message.

    POST {"template": "<template id>",
          "to": {"email": "ada@example.com", "first_name": "Ada", "attributes": {...}},
          "event": {"name": "order_placed", "properties": {"total": "42.00"}},
          "idempotency_key": "order-1234-confirmation"}
    202 {"id": "<message id>", "status": "queued", "to": "ada@example.com", ...}

Only templates whose purpose is transactional are sent here: marketing email goes through
campaigns and journeys, where consent, caps and quiet hours apply. The idempotency key is
scoped to the workspace: the same key again answers 200 with the message it made the first
time and sends nothing; the same key for another recipient or template is refused (409).
A contact this API creates is not subscribed to marketing (a receipt is not consent).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from contacts import services as contact_services
from contacts.models import Source, normalise_email
from workspaces.api_base import WorkspaceViewSet
from workspaces.models import Role, Workspace

from .models import EmailTemplate, Message, MessageEvent, MessageSource, TemplatePurpose
from .rendering.compile import RenderFailed, TemplateInvalid
from .rendering.context import event_data
from .sending import outbox
from .services import compile_template

KEY_MAX = Message._meta.get_field("source_id").max_length
PROPERTIES_MAX = 32 * 1024
RECIPIENT_FIELDS = (*contact_services.STANDARD_FIELDS, "attributes")
UNKNOWN = "Unknown field."
NO_PURPOSE = (
    "This API sends transactional templates only, so there is no purpose to choose: leave "
    "it out. Marketing email goes through campaigns and journeys."
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _refuse_unknown(initial: Any, known: Any, where: str | None = None) -> None:
    if isinstance(initial, dict):
        unknown = sorted(set(initial) - set(known))
        if unknown:
            errors = {key: [UNKNOWN] for key in unknown}
            raise ValidationError({where: errors} if where else errors)


class RecipientSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    first_name = serializers.CharField(required=False, allow_blank=True)
    last_name = serializers.CharField(required=False, allow_blank=True)
    external_id = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    phone = serializers.CharField(required=False, allow_blank=True)
    timezone = serializers.CharField(required=False, allow_blank=True)
    locale = serializers.CharField(required=False, allow_blank=True)
    birthday = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    attributes = serializers.DictField(required=False, help_text="Custom attributes by key.")


class SendEventSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    properties = serializers.DictField(default=dict)

    def validate_properties(self, value: dict) -> dict:
        if len(json.dumps(value, default=str)) > PROPERTIES_MAX:
            raise ValidationError(f"Keep the properties under {PROPERTIES_MAX // 1024} KB.")
        return value


class SendInputSerializer(serializers.Serializer):
    template = serializers.UUIDField(help_text="The id of a transactional template.")
    to = RecipientSerializer(
        help_text="The recipient: the contact is created, or updated with these fields."
    )
    event = SendEventSerializer(
        required=False,
        allow_null=True,
        help_text="What happened, for personalisation: {{ event.properties.total }}.",
    )
    idempotency_key = serializers.CharField(
        max_length=KEY_MAX,
        help_text="Your name for this email, unique in the workspace (e.g. "
        "order-1234-confirmation). Sending the same key again sends nothing more.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.initial_data, dict) and "purpose" in self.initial_data:
            raise ValidationError({"purpose": [NO_PURPOSE]})
        _refuse_unknown(self.initial_data, self.fields)
        _refuse_unknown(self.initial_data.get("to"), RECIPIENT_FIELDS, "to")
        event = self.initial_data.get("event")
        _refuse_unknown(event, ("name", "properties"), "event")
        return data


class MessageEventSerializer(serializers.Serializer):
    kind = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    machine = serializers.BooleanField(help_text="A privacy proxy's open or a scanner's click.")
    url = serializers.CharField(help_text="The link, for a click.")


class MessageSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    to = serializers.CharField(source="to_email", read_only=True)
    template = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    contact = serializers.SlugRelatedField(slug_field="public_id", read_only=True)
    idempotency_key = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "status",
            "to",
            "contact",
            "template",
            "purpose",
            "source",
            "idempotency_key",
            "subject",
            "created_at",
            "sent_at",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "failure_reason",
        ]
        read_only_fields = fields

    def get_idempotency_key(self, message: Message) -> str | None:
        """The caller's key (transactional messages only)."""
        return message.source_id if message.source == MessageSource.TRANSACTIONAL else None


class MessageDetailSerializer(MessageSerializer):
    events = serializers.SerializerMethodField()

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "events"]
        read_only_fields = fields

    @extend_schema(exclude=True)
    def get_events(self, message: Message) -> list[dict[str, Any]]:
        events = (
            MessageEvent.objects.for_workspace(message.workspace_id)
            .filter(message=message)
            .order_by("occurred_at", "pk")
        )
        return MessageEventSerializer(events, many=True).data


def _lock_key(workspace: Workspace, key: str) -> None:
    """Serialise requests that carry the same key (PostgreSQL; SQLite serialises writers)."""
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"transactional:{workspace.pk}:{key}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)]
        )


def _template(workspace: Workspace, public_id: Any) -> EmailTemplate:
    template = EmailTemplate.objects.for_workspace(workspace).filter(public_id=public_id).first()
    if template is None:
        raise exceptions.NotFound("No such template in this workspace.")
    if template.archived_at is not None:
        raise ValidationError(
            {"template": [f"“{template.name}” is archived: restore it before sending with it."]}
        )
    if template.purpose != TemplatePurpose.TRANSACTIONAL:
        raise ValidationError(
            {
                "template": [
                    f"“{template.name}” is a marketing template. This API sends transactional "
                    "email only (receipts, password resets...), which skips consent, caps and "
                    "quiet hours; send marketing email with a campaign or a journey, or make "
                    "this template transactional if that is what it is."
                ]
            }
        )
    try:
        compile_template(template)
    except (TemplateInvalid, RenderFailed) as exc:
        raise ValidationError({"template": [f"“{template.name}” does not compile: {exc}"]}) from exc
    return template


def _same_request(message: Message, template_id: Any, email: str) -> bool:
    template_matches = message.template is None or message.template.public_id == template_id
    return template_matches and message.to_email.lower() == email


def send_transactional(workspace: Workspace, data: dict[str, Any]) -> tuple[Message, bool]:
    """Queue the email `data` describes (SendInputSerializer's output); returns the message
    and whether it is new. Nothing is written when anything is refused."""
    key = data["idempotency_key"]
    recipient = dict(data["to"])
    email = normalise_email(recipient["email"])
    with transaction.atomic():
        _lock_key(workspace, key)
        existing = (
            Message.objects.for_workspace(workspace)
            .filter(source=MessageSource.TRANSACTIONAL, source_id=key)
            .select_related("template")
            .first()
        )
        if existing is not None:
            if not _same_request(existing, data["template"], email):
                raise Conflict(
                    {
                        "idempotency_key": [
                            "This key was used for another email (another recipient or "
                            "template). Use a new key for a new email."
                        ]
                    }
                )
            return existing, False
        template = _template(workspace, data["template"])
        [result] = contact_services.upsert_contacts(
            workspace=workspace, rows=[recipient], source=Source.API, subscribe=False
        )
        if result.contact is None:
            raise ValidationError({"to": result.errors or {"email": ["Not a usable address."]}})
        event = data.get("event") or None
        context = event_data(event["name"], event["properties"], timezone.now()) if event else {}
        message = outbox.enqueue_one(
            workspace,
            template=template,
            contact=result.contact,
            source=MessageSource.TRANSACTIONAL,
            source_id=key,
            purpose=TemplatePurpose.TRANSACTIONAL,
            context=context,
        )
    return message, True


SEND_ERRORS = OpenApiResponse(
    inline_serializer(
        "SendErrors",
        {
            "template": serializers.ListField(child=serializers.CharField(), required=False),
            "to": serializers.DictField(required=False),
            "idempotency_key": serializers.ListField(child=serializers.CharField(), required=False),
        },
    ),
    description="Field errors: a marketing, archived or broken template, an unusable "
    "address (under to.email), a missing key. Nothing is sent or saved.",
)


class MessageViewSet(mixins.RetrieveModelMixin, WorkspaceViewSet):
    """Send one transactional email; read what became of any message of the workspace."""

    model = Message
    serializer_class = MessageDetailSerializer
    write_role = Role.EDITOR

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.request is not None and self.request.method == "POST":
            return SendInputSerializer
        return MessageDetailSerializer

    def workspace_queryset(self, workspace: Workspace):  # type: ignore[no-untyped-def]
        return Message.objects.for_workspace(workspace).select_related("template", "contact")

    @extend_schema(
        request=SendInputSerializer,
        responses={
            202: MessageSerializer,
            200: OpenApiResponse(MessageSerializer, description="The key was seen before."),
            400: SEND_ERRORS,
            404: OpenApiResponse(description="No such template in this workspace."),
            409: OpenApiResponse(description="The key was used for another email."),
        },
    )
    def create(self, request: Request, **kwargs: Any) -> Response:
        serializer = SendInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message, new = send_transactional(request.workspace, dict(serializer.validated_data))
        return Response(
            MessageSerializer(message).data,
            status=status.HTTP_202_ACCEPTED if new else status.HTTP_200_OK,
        )
