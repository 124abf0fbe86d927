"""REST endpoints for the audience: contacts (with bulk upsert and their events), tags,
custom fields, personas and lifecycle stages. Thin: serializers check shapes, the
services in contacts.services and contacts.audience do the writing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from workspaces.access import get_owned_or_404
from workspaces.api_base import WorkspaceViewSet
from workspaces.models import ApiKey, Role, Workspace

from . import audience, services
from .models import (
    Contact,
    CustomField,
    Event,
    FieldType,
    LifecycleStage,
    Persona,
    Source,
    SubscriptionStatus,
    Tag,
    normalise_email,
)
from .queries import ContactFilters, filter_contacts
from .segments.membership import set_persona_rule

EDITABLE_FIELDS = services.STANDARD_FIELDS
UNKNOWN_FIELD = "Unknown field; custom values go under “attributes”."
UNKNOWN_ROW_FIELD = (
    f"Unknown field: a contact has {', '.join(EDITABLE_FIELDS)} and attributes "
    "(custom values go under “attributes”; tags, stage and persona apply to the whole call)."
)
SETTABLE_STATUSES = (SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.UNSUBSCRIBED)
BULK_STATUSES = ("created", "updated", "skipped", "rejected")


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the schema describes workspaces.authentication.ApiKeyAuthentication."""

    target_class = "workspaces.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The workspace's API key: `Authorization: Bearer <key>`, or HTTP "
            "Basic with the key as the user name (how Segment libraries send a write key).",
        }


def _who(request: Request) -> str:
    """What a consent record says about who made the change."""
    if isinstance(request.auth, ApiKey):
        return f"API key {request.auth.prefix}"
    return f"API: {getattr(request.user, 'email', '')}"


def _lookup(model: type[Any], workspace: Workspace, reference: str, field: str) -> Any:
    """A stage, persona or tag by public id or by name (case-insensitive), or a 400."""
    objects = model.objects.for_workspace(workspace)
    try:
        found = objects.filter(public_id=uuid.UUID(str(reference))).first()
    except ValueError:
        found = objects.filter(name__iexact=str(reference).strip()).first()
    if found is None:
        noun = model._meta.verbose_name
        raise ValidationError({field: [f"This workspace has no {noun} “{reference}”."]})
    return found


# --- serializers ------------------------------------------------------------------------


class NamedRefSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField()


class ContactSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    tags = serializers.SerializerMethodField()
    lifecycle_stage = NamedRefSerializer(allow_null=True, read_only=True)
    persona = NamedRefSerializer(allow_null=True, read_only=True)

    class Meta:
        model = Contact
        fields = [
            "id",
            "email",
            "external_id",
            "first_name",
            "last_name",
            "phone",
            "timezone",
            "locale",
            "birthday",
            "attributes",
            "tags",
            "status",
            "lifecycle_stage",
            "persona",
            "source",
            "last_activity_at",
            "created_at",
            "updated_at",
        ]

    def get_tags(self, contact: Contact) -> list[str]:
        return sorted(tag.name for tag in contact.tags.all())


class ContactInputSerializer(serializers.Serializer):
    """Shapes only: values are checked by the services (email, time zone, custom fields)."""

    email = serializers.CharField(max_length=320)
    external_id = serializers.CharField(allow_blank=True, allow_null=True, required=False)
    first_name = serializers.CharField(allow_blank=True, required=False)
    last_name = serializers.CharField(allow_blank=True, required=False)
    phone = serializers.CharField(allow_blank=True, required=False)
    timezone = serializers.CharField(allow_blank=True, required=False)
    locale = serializers.CharField(allow_blank=True, required=False)
    birthday = serializers.CharField(allow_blank=True, allow_null=True, required=False)
    attributes = serializers.DictField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    lifecycle_stage = serializers.CharField(
        allow_null=True, required=False, help_text="A stage id or name."
    )
    persona = serializers.CharField(
        allow_null=True, required=False, help_text="A persona id or name."
    )
    status = serializers.ChoiceField(choices=SETTABLE_STATUSES, required=False)
    consent_text = serializers.CharField(
        allow_blank=True,
        required=False,
        help_text="The words the person agreed to; kept in their consent record.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        unknown = (
            set(self.initial_data) - set(self.fields)
            if isinstance(self.initial_data, Mapping)
            else set()
        )
        if unknown:
            raise ValidationError({key: [UNKNOWN_FIELD] for key in sorted(unknown)})
        return data


class BulkInputSerializer(serializers.Serializer):
    contacts = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    existing = serializers.ChoiceField(choices=["update", "skip"], default="update")
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    lifecycle_stage = serializers.CharField(required=False, allow_null=True)
    persona = serializers.CharField(required=False, allow_null=True)
    status = serializers.ChoiceField(
        choices=SETTABLE_STATUSES, default=SubscriptionStatus.SUBSCRIBED
    )
    consent_text = serializers.CharField(allow_blank=True, required=False)

    def validate_contacts(self, rows: list[Any]) -> list[Any]:
        if len(rows) > services.MAX_BULK_CONTACTS:
            raise ValidationError(
                f"At most {services.MAX_BULK_CONTACTS} contacts per call, got {len(rows)}."
            )
        return rows


BULK_RESULT = inline_serializer(
    "ContactBulkResult",
    {
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "skipped": serializers.IntegerField(),
        "rejected": serializers.IntegerField(),
        "results": inline_serializer(
            "ContactBulkItem",
            {
                "index": serializers.IntegerField(),
                "status": serializers.ChoiceField(choices=BULK_STATUSES),
                "id": serializers.UUIDField(required=False),
                "errors": serializers.DictField(required=False),
            },
            many=True,
        ),
    },
)


class EventSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = Event
        fields = [
            "id",
            "name",
            "properties",
            "context",
            "occurred_at",
            "received_at",
            "source",
            "revenue",
            "currency",
            "message_id",
            "anonymous_id",
        ]


# --- contacts ---------------------------------------------------------------------------

CONTACT_FILTERS = [
    OpenApiParameter("search", str, description="Part of the email, first or last name."),
    OpenApiParameter("status", str, enum=SubscriptionStatus.values),
    OpenApiParameter("stage", str, description="A lifecycle stage id or name."),
    OpenApiParameter("persona", str, description="A persona id or name."),
    OpenApiParameter("tag", str, description="A tag id or name."),
    OpenApiParameter("created_since", OpenApiTypes.DATETIME),
    OpenApiParameter("updated_since", OpenApiTypes.DATETIME),
]


class ContactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceViewSet):
    """Contacts, newest first. Writes go through contacts.services, in one transaction."""

    serializer_class = ContactSerializer
    ordering = ("-created_at", "-id")

    def get_serializer_class(self) -> type[serializers.Serializer]:
        """What the browsable API's form shows: the input of a write, else a contact."""
        if self.request is not None and self.request.method in ("POST", "PATCH"):
            return BulkInputSerializer if self.action == "bulk" else ContactInputSerializer
        return ContactSerializer

    def workspace_queryset(self, workspace: Workspace) -> QuerySet[Contact]:
        contacts = Contact.objects.for_workspace(workspace)
        if self.action == "list":
            contacts = self._filtered(workspace)
        return contacts.select_related("lifecycle_stage", "persona").prefetch_related("tags")

    def _filtered(self, workspace: Workspace) -> QuerySet[Contact]:
        params = self.request.query_params
        status_ = params.get("status", "")
        if status_ and status_ not in SubscriptionStatus.values:
            known = ", ".join(SubscriptionStatus.values)
            raise ValidationError(
                {"status": [f"“{status_}” is not a status; use one of: {known}."]}
            )
        refs = {
            name: _lookup(model, workspace, params[name], name).public_id
            for name, model in (("stage", LifecycleStage), ("persona", Persona), ("tag", Tag))
            if params.get(name)
        }
        filters = ContactFilters(q=params.get("search", ""), status=status_, **refs)
        contacts = filter_contacts(workspace, filters)
        for param, lookup in (
            ("created_since", "created_at__gte"),
            ("updated_since", "updated_at__gte"),
        ):
            if params.get(param):
                contacts = contacts.filter(**{lookup: _datetime_param(params[param], param)})
        return contacts

    @extend_schema(parameters=CONTACT_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ContactInputSerializer, responses={201: ContactSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        workspace = request.workspace
        data = _valid(ContactInputSerializer(data=request.data))
        _refuse_taken(workspace, data)
        stage, persona = _stage_and_persona(workspace, data)
        with transaction.atomic():
            tags = services.get_or_create_tags(workspace=workspace, names=data.get("tags", []))
            [result] = services.upsert_contacts(
                workspace=workspace,
                rows=[_row(data)],
                source=Source.API,
                existing="skip",
                tags=tags,
                stage=stage,
                persona=persona,
                **_subscription(request, data),
            )
            if result.status != "created":
                raise ValidationError(result.errors or {"email": ["This contact already exists."]})
        contact = self.get_queryset().get(pk=result.contact.pk)
        return Response(ContactSerializer(contact).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ContactInputSerializer, responses=ContactSerializer)
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        workspace = request.workspace
        contact = self.get_object()
        data = _valid(ContactInputSerializer(data=request.data, partial=True))
        _refuse_taken(workspace, data, contact)
        changes = {name: data[name] for name in EDITABLE_FIELDS if name in data}
        if "attributes" in data:
            merged = {**contact.attributes, **data["attributes"]}
            changes["attributes"] = {k: v for k, v in merged.items() if v is not None}
        stage, persona = _stage_and_persona(workspace, data)
        if "lifecycle_stage" in data:
            changes["lifecycle_stage"] = stage
        if "persona" in data:
            changes["persona"] = persona
        with transaction.atomic():
            services.update_contact(
                workspace=workspace, contact=contact, data=changes, source=Source.API
            )
            if "tags" in data:
                _set_tags(workspace, contact, data["tags"])
            if "status" in data:
                _set_status(request, contact, data["status"], data.get("consent_text", ""))
        return Response(ContactSerializer(self.get_queryset().get(pk=contact.pk)).data)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        contact = self.get_object()
        services.delete_contacts(workspace=request.workspace, contact_ids=[contact.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=BulkInputSerializer, responses=BULK_RESULT)
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request, **kwargs: Any) -> Response:
        """Create or update up to 1,000 contacts; one result per contact, in order."""
        workspace = request.workspace
        data = _valid(BulkInputSerializer(data=request.data))
        stage, persona = _stage_and_persona(workspace, data)
        results: list[dict[str, Any] | None] = [None] * len(data["contacts"])
        rows, positions = [], []
        for index, row in enumerate(data["contacts"]):
            errors = _row_shape_errors(row)
            if errors:
                results[index] = {"index": index, "status": "rejected", "errors": errors}
            else:
                rows.append(row)
                positions.append(index)
        with transaction.atomic():
            tags = services.get_or_create_tags(workspace=workspace, names=data.get("tags", []))
            outcomes = services.upsert_contacts(
                workspace=workspace,
                rows=rows,
                source=Source.API,
                existing=data["existing"],
                tags=tags,
                stage=stage,
                persona=persona,
                **_subscription(request, data),
            )
        for position, outcome in zip(positions, outcomes, strict=True):
            item: dict[str, Any] = {"index": position, "status": outcome.status}
            if outcome.contact is not None:
                item["id"] = str(outcome.contact.public_id)
            if outcome.errors:
                item["errors"] = outcome.errors
            results[position] = item
        counts = dict.fromkeys(BULK_STATUSES, 0)
        for item in results:
            counts[item["status"]] += 1  # type: ignore[index]
        return Response({**counts, "results": results})

    @extend_schema(
        parameters=[OpenApiParameter("name", str, description="Only events of this name.")],
        responses=EventSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def events(self, request: Request, **kwargs: Any) -> Response:
        """The contact's events, newest first."""
        contact = get_owned_or_404(Contact, request.workspace, kwargs["public_id"])
        events = Event.objects.for_workspace(request.workspace).filter(contact=contact)
        if request.query_params.get("name"):
            events = events.filter(name=request.query_params["name"])
        page = self.paginator.paginate_queryset(events, request, view=_NewestEventsFirst())
        return self.paginator.get_paginated_response(EventSerializer(page, many=True).data)


class _NewestEventsFirst:
    """What the cursor paginator reads the order of a contact's events from."""

    ordering = ("-occurred_at", "-id")


def _valid(serializer: serializers.Serializer) -> dict[str, Any]:
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _datetime_param(value: str, name: str) -> Any:
    parsed = serializers.DateTimeField().to_internal_value
    try:
        return parsed(value)
    except ValidationError as exc:
        raise ValidationError({name: exc.detail}) from exc


def _subscription(request: Request, data: Mapping[str, Any]) -> dict[str, Any]:
    """New contacts are subscribed, with a consent record saying it came through the API,
    unless the call asks for "unsubscribed"."""
    if data.get("status", SubscriptionStatus.SUBSCRIBED) != SubscriptionStatus.SUBSCRIBED:
        return {"consent": None, "subscribe": False}
    consent = services.ConsentInput(
        method=Source.API, source=_who(request), text_shown=data.get("consent_text", "")
    )
    return {"consent": consent, "subscribe": True}


def _row(data: Mapping[str, Any]) -> dict[str, Any]:
    row = {name: data[name] for name in EDITABLE_FIELDS if name in data}
    row["attributes"] = data.get("attributes") or {}
    return row


def _row_shape_errors(row: Any) -> dict[str, list[str]]:
    if not isinstance(row, Mapping):
        return {"contact": ["Each contact is a JSON object."]}
    allowed = {*EDITABLE_FIELDS, "attributes"}
    errors = {key: [UNKNOWN_ROW_FIELD] for key in row if key not in allowed}
    if "attributes" in row and not isinstance(row["attributes"], Mapping):
        errors["attributes"] = ["Attributes must be an object of name → value."]
    return errors


def _refuse_taken(
    workspace: Workspace, data: Mapping[str, Any], contact: Contact | None = None
) -> None:
    """A clear error for an email or external id another contact already has."""
    others = Contact.objects.for_workspace(workspace)
    if contact is not None:
        others = others.exclude(pk=contact.pk)
    errors = {}
    if (
        isinstance(data.get("email"), str)
        and others.filter(email=normalise_email(data["email"])).exists()
    ):
        errors["email"] = ["Another contact already has this email address."]
    external_id = (data.get("external_id") or "").strip()
    if external_id and others.filter(external_id=external_id).exists():
        errors["external_id"] = ["Another contact already has this external id."]
    if errors:
        raise ValidationError(errors)


def _stage_and_persona(
    workspace: Workspace, data: Mapping[str, Any]
) -> tuple[LifecycleStage | None, Persona | None]:
    stage = persona = None
    if data.get("lifecycle_stage"):
        stage = _lookup(LifecycleStage, workspace, data["lifecycle_stage"], "lifecycle_stage")
    if data.get("persona"):
        persona = _lookup(Persona, workspace, data["persona"], "persona")
    return stage, persona


def _set_tags(workspace: Workspace, contact: Contact, names: list[str]) -> None:
    wanted = services.get_or_create_tags(workspace=workspace, names=names)
    current = list(contact.tags.all())
    wanted_ids = {tag.pk for tag in wanted}
    current_ids = {tag.pk for tag in current}
    extra = [tag for tag in current if tag.pk not in wanted_ids]
    missing = [tag for tag in wanted if tag.pk not in current_ids]
    if extra:
        services.remove_tags(workspace=workspace, contact_ids=[contact.pk], tags=extra)
    if missing:
        services.add_tags(workspace=workspace, contact_ids=[contact.pk], tags=missing)


def _set_status(request: Request, contact: Contact, new_status: str, consent_text: str) -> None:
    workspace = request.workspace
    this_one = Contact.objects.for_workspace(workspace).filter(pk=contact.pk)
    if new_status == SubscriptionStatus.UNSUBSCRIBED:
        services.unsubscribe(
            workspace=workspace, contacts=this_one, method=Source.API, source=_who(request)
        )
        return
    consent = services.ConsentInput(
        method=Source.API, source=_who(request), text_shown=consent_text
    )
    services.set_subscription(
        workspace=workspace, contacts=this_one, status=new_status, consent=consent
    )


# --- tags -------------------------------------------------------------------------------


class TagSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    name = serializers.CharField(max_length=80)
    contact_count = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Tag
        fields = ["id", "name", "contact_count", "created_at"]


class TagViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceViewSet):
    """Tags by name. Contacts get their tags through the contacts endpoints."""

    serializer_class = TagSerializer
    ordering = ("name", "id")
    write_role = Role.ADMIN

    def workspace_queryset(self, workspace: Workspace) -> QuerySet[Tag]:
        return Tag.objects.for_workspace(workspace).annotate(contact_count=Count("contacts"))

    def create(self, request: Request, **kwargs: Any) -> Response:
        data = _valid(TagSerializer(data=request.data))
        taken = audience.name_taken_error(Tag, workspace=request.workspace, name=data["name"])
        if taken:
            raise taken
        [tag] = services.get_or_create_tags(workspace=request.workspace, names=[data["name"]])
        return Response(TagSerializer(tag).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        tag = self.get_object()
        data = _valid(TagSerializer(data=request.data))
        audience.rename_tag(workspace=request.workspace, tag=tag, name=data["name"])
        return Response(TagSerializer(self.get_object()).data)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        audience.delete_tag(workspace=request.workspace, tag=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- custom fields ----------------------------------------------------------------------


class CustomFieldSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    key = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="Made from the label if empty."
    )
    field_type = serializers.ChoiceField(choices=FieldType.choices, default=FieldType.TEXT)
    choices = serializers.ListField(child=serializers.CharField(), required=False)

    class Meta:
        model = CustomField
        fields = ["id", "key", "label", "field_type", "choices", "created_at"]


class CustomFieldViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceViewSet):
    """Typed contact attributes. The key cannot change once made: templates use it."""

    serializer_class = CustomFieldSerializer
    model = CustomField
    ordering = ("label", "id")
    write_role = Role.ADMIN

    def create(self, request: Request, **kwargs: Any) -> Response:
        data = _valid(CustomFieldSerializer(data=request.data))
        field = audience.create_custom_field(
            workspace=request.workspace,
            label=data["label"],
            field_type=data["field_type"],
            key=data.get("key", ""),
            choices=data.get("choices", []),
        )
        return Response(CustomFieldSerializer(field).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        field = self.get_object()
        data = _valid(CustomFieldSerializer(data=request.data, partial=True))
        if "key" in data and data["key"] != field.key:
            raise ValidationError({"key": ["The key cannot change; create a new field instead."]})
        audience.update_custom_field(
            workspace=request.workspace,
            field=field,
            label=data.get("label"),
            field_type=data.get("field_type"),
            choices=data.get("choices"),
        )
        return Response(CustomFieldSerializer(field).data)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        audience.delete_custom_field(workspace=request.workspace, field=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- personas ---------------------------------------------------------------------------


class PersonaSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    contact_count = serializers.IntegerField(read_only=True, default=None)
    rule = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="A segment rule tree; contacts without a persona who match get this one.",
    )

    class Meta:
        model = Persona
        fields = [
            "id",
            "name",
            "description",
            "goals",
            "pain_points",
            "rule",
            "contact_count",
            "created_at",
        ]


class PersonaViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceViewSet):
    """Buyer personas. Contacts are assigned one through the contacts endpoints."""

    serializer_class = PersonaSerializer
    ordering = ("name", "id")
    write_role = Role.ADMIN

    def workspace_queryset(self, workspace: Workspace) -> QuerySet[Persona]:
        return Persona.objects.for_workspace(workspace).annotate(contact_count=Count("contacts"))

    def create(self, request: Request, **kwargs: Any) -> Response:
        data = _valid(PersonaSerializer(data=request.data))
        with transaction.atomic():
            rule = data.pop("rule", None)
            persona = audience.create_persona(workspace=request.workspace, **data)
            if rule:
                set_persona_rule(workspace=request.workspace, persona=persona, rule=rule)
        return Response(PersonaSerializer(persona).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        persona = self.get_object()
        data = _valid(PersonaSerializer(data=request.data, partial=True))
        with transaction.atomic():
            has_rule, rule = "rule" in data, data.pop("rule", None)
            audience.update_persona(workspace=request.workspace, persona=persona, **data)
            if has_rule:
                set_persona_rule(workspace=request.workspace, persona=persona, rule=rule)
        return Response(PersonaSerializer(self.get_object()).data)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        audience.delete_persona(workspace=request.workspace, persona=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- lifecycle stages -------------------------------------------------------------------


class StageSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    contact_count = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = LifecycleStage
        fields = ["id", "name", "description", "position", "contact_count"]
        read_only_fields = ["position"]


class StageOrderSerializer(serializers.Serializer):
    order = serializers.ListField(
        child=serializers.UUIDField(), help_text="Every stage id, in the new order."
    )


class StageDeleteSerializer(serializers.Serializer):
    move_to = serializers.CharField(
        required=False, help_text="The stage (id or name) that takes this stage's contacts."
    )


class StageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceViewSet):
    """The workspace's lifecycle stages, in order."""

    serializer_class = StageSerializer
    ordering = ("position", "id")
    write_role = Role.ADMIN

    def workspace_queryset(self, workspace: Workspace) -> QuerySet[LifecycleStage]:
        return LifecycleStage.objects.for_workspace(workspace).annotate(
            contact_count=Count("contacts")
        )

    def create(self, request: Request, **kwargs: Any) -> Response:
        data = _valid(StageSerializer(data=request.data))
        taken = audience.name_taken_error(
            LifecycleStage, workspace=request.workspace, name=data["name"]
        )
        if taken:
            raise taken
        stage = services.create_stage(
            workspace=request.workspace,
            name=data["name"],
            description=data.get("description", ""),
        )
        return Response(StageSerializer(stage).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        stage = self.get_object()
        data = _valid(StageSerializer(data=request.data, partial=True))
        name = data.get("name", stage.name)
        taken = audience.name_taken_error(
            LifecycleStage, workspace=request.workspace, name=name, instance=stage
        )
        if taken:
            raise taken
        services.rename_stage(
            workspace=request.workspace,
            stage=stage,
            name=name,
            description=data.get("description"),
        )
        return Response(StageSerializer(self.get_object()).data)

    @extend_schema(
        parameters=[OpenApiParameter("move_to", str)],
        request=StageDeleteSerializer,
        responses=inline_serializer("StageDeleted", {"moved": serializers.IntegerField()}),
    )
    def destroy(self, request: Request, **kwargs: Any) -> Response:
        stage = self.get_object()
        body = request.data if isinstance(request.data, Mapping) else {}
        reference = request.query_params.get("move_to") or body.get("move_to")
        move_to = (
            _lookup(LifecycleStage, request.workspace, reference, "move_to") if reference else None
        )
        moved = audience.remove_stage(workspace=request.workspace, stage=stage, move_to=move_to)
        return Response({"moved": moved}, status=status.HTTP_200_OK)

    @extend_schema(request=StageOrderSerializer, responses=StageSerializer(many=True))
    @action(detail=False, methods=["post"])
    def reorder(self, request: Request, **kwargs: Any) -> Response:
        data = _valid(StageOrderSerializer(data=request.data))
        try:
            services.reorder_stages(workspace=request.workspace, ordered_ids=data["order"])
        except DjangoValidationError as exc:
            raise ValidationError({"order": exc.messages}) from exc
        stages = self.workspace_queryset(request.workspace).order_by("position", "id")
        return Response(StageSerializer(stages, many=True).data)
