"""Forms of the contact pages: list filters, bulk actions, adding a contact, editing one."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from workspaces.forms import TIMEZONE_CHOICES
from workspaces.models import Workspace

from .models import (
    Contact,
    CustomField,
    FieldType,
    LifecycleStage,
    Persona,
    SubscriptionStatus,
    normalise_email,
)
from .queries import DEFAULT_PAGE_SIZE, DEFAULT_SORT, PAGE_SIZES, SORTS, ContactFilters

# --- the list --------------------------------------------------------------------------------


class ContactFilterForm(forms.Form):
    """Query parameters of the list; a bad value is reported and that filter ignored."""

    q = forms.CharField(required=False, max_length=200, strip=True)
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *SubscriptionStatus.choices]
    )
    stage = forms.UUIDField(required=False, error_messages={"invalid": "Unknown stage."})
    persona = forms.UUIDField(required=False, error_messages={"invalid": "Unknown persona."})
    tag = forms.UUIDField(required=False, error_messages={"invalid": "Unknown tag."})
    sort = forms.ChoiceField(required=False, choices=[(k, s.label) for k, s in SORTS.items()])
    per_page = forms.TypedChoiceField(
        required=False, coerce=int, choices=[(str(n), str(n)) for n in PAGE_SIZES]
    )

    def value(self, name: str) -> Any:
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return self.cleaned_data.get(name) or None

    def filters(self) -> ContactFilters:
        return ContactFilters(
            q=self.value("q") or "",
            status=self.value("status") or "",
            stage=self.value("stage"),
            persona=self.value("persona"),
            tag=self.value("tag"),
        )

    def chosen_sort(self) -> str:
        return self.value("sort") or DEFAULT_SORT

    def page_size(self) -> int:
        return self.value("per_page") or DEFAULT_PAGE_SIZE


class UUIDListField(forms.Field):
    """The ticked rows: a list of contact public ids."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[uuid.UUID]:
        try:
            return [uuid.UUID(str(v)) for v in value or []]
        except ValueError as exc:
            raise ValidationError("Some selected contacts are not valid.") from exc


NO_STAGE = "none"
BULK_ACTIONS = [
    ("add_tag", "Add tag"),
    ("remove_tag", "Remove tag"),
    ("change_stage", "Change stage"),
    ("unsubscribe", "Unsubscribe"),
    ("delete", "Delete"),
]


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(choices=BULK_ACTIONS)
    scope = forms.ChoiceField(
        choices=[("selected", "Selected contacts"), ("all", "All matching contacts")],
        initial="selected",
    )
    contact = UUIDListField(required=False)
    tag_name = forms.CharField(required=False, max_length=80, label="Tag")
    # A stage's public id, or NO_STAGE to take contacts out of every stage.
    stage = forms.CharField(required=False, max_length=40)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        action = cleaned.get("action")
        if cleaned.get("scope") == "selected" and not cleaned.get("contact"):
            raise ValidationError("Tick at least one contact, or choose all matching contacts.")
        if action in ("add_tag", "remove_tag") and not cleaned.get("tag_name", "").strip():
            self.add_error("tag_name", "Type the name of the tag.")
        if action == "change_stage":
            cleaned["stage"] = self._stage(cleaned.get("stage", ""))
        return cleaned

    def _stage(self, value: str) -> LifecycleStage | None:
        if value == NO_STAGE:
            return None
        stage = None
        with contextlib.suppress(ValidationError, ValueError):
            stage = (
                LifecycleStage.objects.for_workspace(self.workspace)
                .filter(public_id=uuid.UUID(value))
                .first()
            )
        if stage is None:
            self.add_error("stage", "Choose the stage to move the contacts to.")
        return stage


# --- adding a contact -----------------------------------------------------------------------


class ContactCreateForm(forms.Form):
    email = forms.CharField(max_length=254, widget=forms.EmailInput(attrs={"autofocus": True}))
    first_name = forms.CharField(required=False, max_length=100)
    last_name = forms.CharField(required=False, max_length=100)
    phone = forms.CharField(required=False, max_length=40)
    lifecycle_stage = forms.ModelChoiceField(
        queryset=LifecycleStage.objects.none(),
        required=False,
        to_field_name="public_id",
        empty_label="No stage",
        label="Lifecycle stage",
    )
    persona = forms.ModelChoiceField(
        queryset=Persona.objects.none(),
        required=False,
        to_field_name="public_id",
        empty_label="None",
    )
    tags = forms.CharField(
        required=False, max_length=500, help_text="Separate several tags with commas."
    )
    subscribe = forms.BooleanField(
        required=False,
        label="This person agreed to receive marketing email",
        help_text="Leave unticked to keep them as a contact without sending them marketing.",
    )
    consent_basis = forms.CharField(
        required=False,
        label="How did they agree?",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="E.g. “Ticked the newsletter box at the till, 3 March”. "
        "Kept as their consent record.",
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lifecycle_stage"].queryset = LifecycleStage.objects.for_workspace(workspace)
        self.fields["persona"].queryset = Persona.objects.for_workspace(workspace)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("subscribe") and not cleaned.get("consent_basis", "").strip():
            self.add_error(
                "consent_basis", "Say how this person agreed, or leave them unsubscribed."
            )
        return cleaned

    def tag_names(self) -> list[str]:
        return [n.strip() for n in self.cleaned_data.get("tags", "").split(",") if n.strip()]

    def contact_row(self) -> dict[str, Any]:
        names = ("email", "first_name", "last_name", "phone")
        return {name: self.cleaned_data[name] for name in names if self.cleaned_data.get(name)}


# --- editing a contact ------------------------------------------------------------------------

ATTRIBUTE_PREFIX = "attr__"
BOOLEAN_CHOICES = [("", "—"), ("yes", "Yes"), ("no", "No")]
STANDARD_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "external_id",
    "timezone",
    "locale",
    "birthday",
)


class ContactEditForm(forms.Form):
    """The contact's fields and its custom fields. Values are checked by the service
    (contacts.services.update_contact), so its errors land on these fields."""

    email = forms.CharField(max_length=254, widget=forms.EmailInput)
    first_name = forms.CharField(required=False, max_length=100)
    last_name = forms.CharField(required=False, max_length=100)
    phone = forms.CharField(required=False, max_length=40)
    external_id = forms.CharField(
        required=False, max_length=255, label="External id", help_text="Your own user id."
    )
    timezone = forms.ChoiceField(
        required=False, label="Time zone", choices=[("", "—"), *TIMEZONE_CHOICES]
    )
    locale = forms.CharField(required=False, max_length=20, help_text="E.g. en-GB.")
    birthday = forms.CharField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="YYYY-MM-DD"
    )

    def __init__(
        self,
        *args: Any,
        workspace: Workspace,
        contact: Contact,
        fields: list[CustomField],
        **kwargs: Any,
    ) -> None:
        if "data" not in kwargs and not args:
            kwargs["initial"] = self.initial_for(contact, fields)
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.contact = contact
        self.custom_fields = fields
        for field in fields:
            self.fields[ATTRIBUTE_PREFIX + field.key] = self.form_field_for(field)

    @staticmethod
    def initial_for(contact: Contact, fields: list[CustomField]) -> dict[str, Any]:
        initial = {name: getattr(contact, name) or "" for name in STANDARD_FIELDS}
        if contact.birthday:
            initial["birthday"] = contact.birthday.isoformat()
        for field in fields:
            value = contact.attributes.get(field.key)
            if field.field_type == FieldType.BOOLEAN and isinstance(value, bool):
                value = "yes" if value else "no"
            initial[ATTRIBUTE_PREFIX + field.key] = "" if value is None else value
        return initial

    @staticmethod
    def form_field_for(field: CustomField) -> forms.Field:
        common = {"required": False, "label": field.label}
        if field.field_type == FieldType.CHOICE:
            choices = [("", "—"), *((c, c) for c in field.choices)]
            return forms.ChoiceField(choices=choices, **common)
        if field.field_type == FieldType.BOOLEAN:
            return forms.ChoiceField(choices=BOOLEAN_CHOICES, **common)
        widget = {
            FieldType.NUMBER: forms.TextInput(attrs={"inputmode": "decimal"}),
            FieldType.DATE: forms.DateInput(attrs={"type": "date"}),
        }.get(field.field_type, forms.TextInput)
        return forms.CharField(widget=widget, max_length=1000, **common)

    def clean_email(self) -> str:
        email = normalise_email(self.cleaned_data["email"])
        taken = (
            Contact.objects.for_workspace(self.workspace)
            .filter(email=email)
            .exclude(pk=self.contact.pk)
            .exists()
        )
        if taken:
            raise ValidationError("Another contact already has this address.")
        return email

    def clean_external_id(self) -> str:
        external_id = self.cleaned_data["external_id"].strip()
        if external_id:
            taken = (
                Contact.objects.for_workspace(self.workspace)
                .filter(external_id=external_id)
                .exclude(pk=self.contact.pk)
                .exists()
            )
            if taken:
                raise ValidationError("Another contact already has this external id.")
        return external_id

    def service_data(self) -> dict[str, Any]:
        """What update_contact receives: standard fields, and the attributes with the
        edited custom fields merged into the ones the form does not show."""
        data = {name: self.cleaned_data.get(name, "") for name in STANDARD_FIELDS}
        attributes = dict(self.contact.attributes)
        for field in self.custom_fields:
            value = self.cleaned_data.get(ATTRIBUTE_PREFIX + field.key, "")
            if value in ("", None):
                attributes.pop(field.key, None)
            else:
                attributes[field.key] = value
        data["attributes"] = attributes
        return data

    def add_service_errors(self, exc: ValidationError) -> None:
        """Errors keyed `attributes.<key>` go on that custom field's input."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for key, messages in exc.message_dict.items():
            name = key
            if key.startswith("attributes."):
                name = ATTRIBUTE_PREFIX + key.removeprefix("attributes.")
            if name in self.fields:
                self.add_error(name, messages)
            else:
                self.add_error(
                    None, [f"{key}: {m}" for m in messages] if key != "__all__" else messages
                )

    def custom_values(self) -> list[tuple[str, Any]]:
        return [
            (field.label, self.contact.attributes.get(field.key)) for field in self.custom_fields
        ]

    def free_form_attributes(self) -> dict[str, Any]:
        defined = {field.key for field in self.custom_fields}
        return {k: v for k, v in self.contact.attributes.items() if k not in defined}

    def standard_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in STANDARD_FIELDS]

    def attribute_fields(self) -> list[forms.BoundField]:
        return [self[ATTRIBUTE_PREFIX + field.key] for field in self.custom_fields]


class ConsentBasisForm(forms.Form):
    consent_basis = forms.CharField(
        label="How did they agree?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say how this person agreed to receive email."},
    )
