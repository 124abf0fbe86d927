"""Signup forms: building them, taking submissions from the public page or an embed, double
opt-in confirmation and lead-magnet delivery. Keyword-only, workspace passed in."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from workspaces.mail import send_workspace_email, workspace_sender
from workspaces.models import Workspace

from .attributes import clean_email, field_definitions
from .models import (
    ConsentKind,
    ConsentRecord,
    Contact,
    CustomField,
    FieldType,
    SignupForm,
    Source,
    SubscriptionStatus,
    Topic,
)
from .services import (
    ConsentInput,
    EventInput,
    get_or_create_tags,
    record_consents,
    record_events,
    set_subscription,
    set_topic_preference,
    suppressed_emails,
    upsert_contacts,
)

CONFIRM_SALT = "mailpath.signup-form.confirm"
CUSTOM_FIELD_PREFIX = "attributes."
# Standard contact fields a form may ask for (the email address is always asked).
STANDARD_FIELDS: dict[str, tuple[str, str]] = {
    "first_name": ("First name", FieldType.TEXT),
    "last_name": ("Last name", FieldType.TEXT),
    "phone": ("Phone", "phone"),
    "birthday": ("Birthday", FieldType.DATE),
}
SETTINGS_FIELDS = (
    "name",
    "title",
    "intro",
    "consent_text",
    "button_label",
    "double_opt_in",
    "success_message",
    "redirect_url",
    "lifecycle_stage",
    "persona",
    "lead_magnet_url",
    "lead_magnet_subject",
    "lead_magnet_body",
)
# Statuses from which a new signup must be confirmed by email, whatever the form says:
# these people told us to stop, or their address stopped working.
MUST_RECONFIRM = {
    SubscriptionStatus.UNSUBSCRIBED,
    SubscriptionStatus.BOUNCED,
    SubscriptionStatus.COMPLAINED,
}


def rate_limit() -> int:
    return settings.SIGNUP_FORM_RATE_LIMIT


def rate_window_seconds() -> int:
    return settings.SIGNUP_FORM_RATE_WINDOW_SECONDS


def confirm_max_age() -> dt.timedelta:
    return dt.timedelta(days=settings.SIGNUP_FORM_CONFIRM_DAYS)


# --- the fields a form can show --------------------------------------------------------


@dataclass(frozen=True)
class FieldOption:
    """One field the builder offers: a standard contact field or a custom field."""

    key: str
    label: str
    field_type: str
    choices: tuple[str, ...] = ()

    @property
    def is_custom(self) -> bool:
        return self.key.startswith(CUSTOM_FIELD_PREFIX)

    @property
    def attribute(self) -> str:
        return self.key.removeprefix(CUSTOM_FIELD_PREFIX)


def _custom_option(field: CustomField) -> FieldOption:
    return FieldOption(
        f"{CUSTOM_FIELD_PREFIX}{field.key}", field.label, field.field_type, tuple(field.choices)
    )


def field_options(workspace: Workspace) -> list[FieldOption]:
    """Every field a form of this workspace may show, standard ones first."""
    standard = [FieldOption(key, label, kind) for key, (label, kind) in STANDARD_FIELDS.items()]
    custom = [_custom_option(f) for f in field_definitions(workspace).values()]
    return standard + sorted(custom, key=lambda o: o.label.lower())


@dataclass(frozen=True)
class ShownField:
    """A field as a form shows it: what it is, its label and whether it must be filled."""

    option: FieldOption
    label: str
    required: bool
    definition: CustomField | None = None


def shown_fields(signup_form: SignupForm) -> list[ShownField]:
    """The form's fields in order; a custom field deleted since is left out."""
    keys = [spec["key"] for spec in signup_form.fields]
    attributes = [k.removeprefix(CUSTOM_FIELD_PREFIX) for k in keys if k.startswith("attributes.")]
    definitions = field_definitions(signup_form.workspace, attributes) if attributes else {}
    shown = []
    for spec in signup_form.fields:
        key = spec["key"]
        definition = definitions.get(key.removeprefix(CUSTOM_FIELD_PREFIX))
        if key in STANDARD_FIELDS:
            label, kind = STANDARD_FIELDS[key]
            option = FieldOption(key, label, kind)
        elif key.startswith(CUSTOM_FIELD_PREFIX) and definition is not None:
            option = _custom_option(definition)
        else:
            continue
        label = spec.get("label") or option.label
        shown.append(ShownField(option, label, bool(spec.get("required")), definition))
    return shown


# --- building forms --------------------------------------------------------------------


def build_signup_form(
    *,
    workspace: Workspace,
    signup_form: SignupForm | None = None,
    fields: Sequence[Mapping[str, Any]] = (),
    **values: Any,
) -> SignupForm:
    """The form with these settings applied, not saved (the builder's preview uses it too)."""
    signup_form = signup_form or SignupForm(workspace=workspace)
    for name in SETTINGS_FIELDS:
        if name in values:
            setattr(signup_form, name, values[name])
    signup_form.fields = _clean_field_specs(workspace, fields)
    return signup_form


def _clean_field_specs(
    workspace: Workspace, fields: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    known = {option.key: option for option in field_options(workspace)}
    specs, seen = [], set()
    for spec in fields:
        key = str(spec.get("key", ""))
        if key not in known:
            raise ValidationError({"fields": f"“{key}” is not a field of this workspace."})
        if key in seen:
            continue
        seen.add(key)
        label = str(spec.get("label") or known[key].label).strip()[:120]
        specs.append({"key": key, "label": label, "required": bool(spec.get("required"))})
    return specs


def _check_settings(workspace: Workspace, signup_form: SignupForm, topics: Sequence[Topic]) -> None:
    errors: dict[str, list[str]] = {}
    if not signup_form.redirect_url and not signup_form.success_message.strip():
        errors["success_message"] = ["Write a success message, or give a page to redirect to."]
    if (signup_form.lead_magnet_subject or signup_form.lead_magnet_body) and not (
        signup_form.lead_magnet_url
    ):
        errors["lead_magnet_url"] = ["Give the link to send, or clear the subject and message."]
    for owned, name in (
        (signup_form.lifecycle_stage, "lifecycle_stage"),
        (signup_form.persona, "persona"),
        *((topic, "topics") for topic in topics),
    ):
        if owned is not None and owned.workspace_id != workspace.pk:
            errors[name] = ["Choose one of this workspace's own."]
    try:
        # The fields list, consent text and success message may be empty: checked above.
        signup_form.full_clean(
            exclude=[
                "workspace",
                "topics",
                "tags",
                "submission_count",
                "fields",
                "consent_text",
                "success_message",
            ]
        )
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def save_signup_form(
    *,
    workspace: Workspace,
    signup_form: SignupForm | None = None,
    fields: Sequence[Mapping[str, Any]] = (),
    topics: Sequence[Topic] = (),
    tag_names: Sequence[str] = (),
    **values: Any,
) -> SignupForm:
    """Create a form (signup_form=None) or change one. `values` are the SignupForm settings
    (name, title, consent_text, double_opt_in, lifecycle_stage, lead_magnet_url, …)."""
    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise TypeError(f"Unknown signup form settings: {', '.join(sorted(unknown))}")
    if signup_form is not None and signup_form.workspace_id != workspace.pk:
        raise ValidationError("A form of another workspace.")
    signup_form = build_signup_form(
        workspace=workspace, signup_form=signup_form, fields=fields, **values
    )
    _check_settings(workspace, signup_form, topics)
    signup_form.save()
    signup_form.topics.set(topics)
    signup_form.tags.set(get_or_create_tags(workspace=workspace, names=tag_names))
    return signup_form


def set_signup_form_active(*, workspace: Workspace, signup_form: SignupForm, active: bool) -> None:
    SignupForm.objects.for_workspace(workspace).filter(pk=signup_form.pk).update(
        is_active=active, updated_at=timezone.now()
    )
    signup_form.is_active = active


@transaction.atomic
def delete_signup_form(*, workspace: Workspace, signup_form: SignupForm) -> None:
    SignupForm.objects.for_workspace(workspace).filter(pk=signup_form.pk).delete()


# --- the public side -------------------------------------------------------------------


def find_public_form(public_id: Any, *, active_only: bool = True) -> SignupForm | None:
    """The form behind a public link. The link itself names the workspace, so this is the
    one deliberate lookup across workspaces; everything after it is scoped to the form's."""
    forms = SignupForm.all_workspaces.select_related("workspace").filter(public_id=public_id)
    if active_only:
        forms = forms.filter(is_active=True)
    return forms.first()


def client_ip(request: HttpRequest) -> str | None:
    """The visitor's address; behind our TLS proxy, the one the proxy appended last."""
    address = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if getattr(settings, "BEHIND_TLS_PROXY", False) and forwarded:
        address = forwarded.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def allow_attempt(*, signup_form: SignupForm, ip_address: str | None) -> bool:
    """Count one submission from this address to this form; False once over the limit."""
    digest = hashlib.sha256(f"{signup_form.public_id}|{ip_address or '-'}".encode()).hexdigest()
    key = f"signup-form-attempts:{digest[:32]}"
    if cache.add(key, 1, timeout=rate_window_seconds()):
        return True
    try:
        attempts = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=rate_window_seconds())
        return True
    return attempts <= rate_limit()


@dataclass
class SubmissionResult:
    contact: Contact | None
    needs_confirmation: bool


def submit_signup_form(
    *,
    workspace: Workspace,
    signup_form: SignupForm,
    row: Mapping[str, Any],
    topics: Sequence[Topic] = (),
    ip_address: str | None = None,
    now: dt.datetime | None = None,
) -> SubmissionResult:
    """Take one signup: upsert the contact with the form's tags, stage and persona, keep the
    consent (with the words shown and the visitor's address), set topic choices, record a
    `form_submitted` event and send the confirmation (double opt-in) or lead-magnet email.

    `row` is a contact row as `upsert_contacts` takes it (email, standard fields,
    `attributes`). Raises ValidationError keyed by field. An address that was erased at its
    owner's request is not added back: the result then has no contact.
    """
    if signup_form.workspace_id != workspace.pk:
        raise ValidationError("A form of another workspace.")
    now = now or timezone.now()
    email = _clean_email_or_error(row.get("email"))
    if suppressed_emails(workspace, [email]):
        return SubmissionResult(contact=None, needs_confirmation=signup_form.double_opt_in)
    consent = ConsentInput(
        method=Source.FORM,
        text_shown=signup_form.consent_text,
        source=signup_form.name,
        ip_address=ip_address,
    )
    with transaction.atomic():
        existing = Contact.objects.for_workspace(workspace).filter(email=email).first()
        needs_confirmation = _needs_confirmation(signup_form, existing)
        contact = _upsert(workspace, signup_form, {**row, "email": email}, existing, consent, now)
        _settle_status(workspace, contact, existing, consent, needs_confirmation, now)
        offered = list(signup_form.topics.all())
        chosen = {topic.pk for topic in topics}
        for topic in offered:
            set_topic_preference(
                workspace=workspace,
                contact=contact,
                topic=topic,
                subscribed=topic.pk in chosen,
                method=Source.FORM,
                ip_address=ip_address,
            )
        record_events(workspace=workspace, events=[_submitted_event(signup_form, contact, now)])
        SignupForm.objects.for_workspace(workspace).filter(pk=signup_form.pk).update(
            submission_count=F("submission_count") + 1
        )
        if needs_confirmation:
            token = confirmation_token(signup_form=signup_form, contact=contact, at=now)
            transaction.on_commit(lambda: send_confirmation_email(signup_form, contact, token))
        elif signup_form.lead_magnet_url:
            transaction.on_commit(lambda: send_lead_magnet_email(signup_form, contact))
    return SubmissionResult(contact=contact, needs_confirmation=needs_confirmation)


def _clean_email_or_error(value: Any) -> str:
    try:
        return clean_email(value)
    except ValidationError as exc:
        raise ValidationError({"email": exc.messages}) from exc


def _needs_confirmation(signup_form: SignupForm, existing: Contact | None) -> bool:
    # Someone who unsubscribed (or whose address failed) confirms by email whatever the
    # form says; on a double opt-in form everyone confirms, even people already subscribed,
    # so a download only goes to an address whose owner asked for it.
    return signup_form.double_opt_in or (existing is not None and existing.status in MUST_RECONFIRM)


def _upsert(
    workspace: Workspace,
    signup_form: SignupForm,
    row: Mapping[str, Any],
    existing: Contact | None,
    consent: ConsentInput,
    now: dt.datetime,
) -> Contact:
    # A form sets the stage and persona of people who have none: a customer who signs up
    # for the newsletter stays a customer.
    stage = signup_form.lifecycle_stage if not (existing and existing.lifecycle_stage_id) else None
    persona = signup_form.persona if not (existing and existing.persona_id) else None
    (result,) = upsert_contacts(
        workspace=workspace,
        rows=[row],
        source=Source.FORM,
        tags=list(signup_form.tags.all()),
        stage=stage,
        persona=persona,
        consent=consent,
        subscribe=not signup_form.double_opt_in,
        now=now,
    )
    if result.status == "rejected" or result.contact is None:
        raise ValidationError(result.errors or {"__all__": ["This signup could not be saved."]})
    return result.contact


def _settle_status(
    workspace: Workspace,
    contact: Contact,
    existing: Contact | None,
    consent: ConsentInput,
    needs_confirmation: bool,
    now: dt.datetime,
) -> None:
    """Pending until confirmed, or subscribed at once; the opt-in is recorded either way
    (upsert_contacts has recorded it for a new contact already)."""
    already_subscribed = existing is not None and existing.status == SubscriptionStatus.SUBSCRIBED
    if needs_confirmation and not already_subscribed:
        status = SubscriptionStatus.PENDING
    else:
        status = SubscriptionStatus.SUBSCRIBED
    this_contact = Contact.objects.for_workspace(workspace).filter(pk=contact.pk)
    if existing is None:
        if contact.status != status:  # created unsubscribed, waiting for confirmation
            this_contact.update(status=status, updated_at=now)
    elif not set_subscription(
        workspace=workspace, contacts=this_contact, status=status, consent=consent, at=now
    ):
        record_consents(workspace=workspace, contacts=[contact], consent=consent, at=now)
    contact.status = status


def _submitted_event(signup_form: SignupForm, contact: Contact, now: dt.datetime) -> EventInput:
    return EventInput(
        name="form_submitted",
        properties={"form_id": str(signup_form.public_id), "form_name": signup_form.name},
        contact_id=contact.pk,
        occurred_at=now,
        source=Source.FORM,
    )


# --- double opt-in ---------------------------------------------------------------------


def confirmation_token(
    *, signup_form: SignupForm, contact: Contact, at: dt.datetime | None = None
) -> str:
    issued = int((at or timezone.now()).timestamp())
    payload = {"f": str(signup_form.public_id), "c": str(contact.public_id), "t": issued}
    return signing.dumps(payload, salt=CONFIRM_SALT, compress=True)


class ConfirmationError(Exception):
    """The confirmation link cannot be used; the message says why, for the visitor."""


@dataclass
class Confirmation:
    contact: Contact
    already_confirmed: bool


def confirm_signup(
    *, signup_form: SignupForm, token: str, ip_address: str | None = None
) -> Confirmation:
    """Subscribe the person behind a confirmation link and send the lead magnet, once."""
    workspace = signup_form.workspace
    try:
        payload = signing.loads(token, salt=CONFIRM_SALT, max_age=confirm_max_age())
    except signing.SignatureExpired as exc:
        raise ConfirmationError(
            "This confirmation link has expired. Fill in the form again to get a new one."
        ) from exc
    except signing.BadSignature as exc:
        raise ConfirmationError(
            "This confirmation link is not valid. Check that you copied all of it."
        ) from exc
    contact = (
        Contact.objects.for_workspace(workspace).filter(public_id=payload.get("c")).first()
        if payload.get("f") == str(signup_form.public_id)
        else None
    )
    if contact is None:
        raise ConfirmationError(
            "This confirmation link is not valid. Check that you copied all of it."
        )
    issued = dt.datetime.fromtimestamp(payload.get("t", 0), tz=dt.UTC)
    with transaction.atomic():
        already = (
            ConsentRecord.objects.for_workspace(workspace)
            .filter(
                contact=contact,
                kind=ConsentKind.CONFIRMED,
                source=signup_form.name[:255],
                occurred_at__gte=issued,
            )
            .exists()
        )
        if already:
            return Confirmation(contact=contact, already_confirmed=True)
        consent = ConsentInput(
            method=Source.FORM,
            kind=ConsentKind.CONFIRMED,
            text_shown=signup_form.consent_text,
            source=signup_form.name,
            ip_address=ip_address,
        )
        this_contact = Contact.objects.for_workspace(workspace).filter(pk=contact.pk)
        changed = set_subscription(
            workspace=workspace,
            contacts=this_contact,
            status=SubscriptionStatus.SUBSCRIBED,
            consent=consent,
        )
        if not changed:  # was subscribed already: keep the proof of this confirmation too
            record_consents(workspace=workspace, contacts=[contact], consent=consent)
        contact.status = SubscriptionStatus.SUBSCRIBED
        if signup_form.lead_magnet_url:
            transaction.on_commit(lambda: send_lead_magnet_email(signup_form, contact))
    return Confirmation(contact=contact, already_confirmed=False)


# --- links and email -------------------------------------------------------------------


def hosted_url(signup_form: SignupForm) -> str:
    return settings.SITE_URL + reverse("signup_form_hosted", args=[signup_form.public_id])


def embed_url(signup_form: SignupForm) -> str:
    return settings.SITE_URL + reverse("signup_form_embed", args=[signup_form.public_id])


def confirm_url(signup_form: SignupForm, token: str) -> str:
    return settings.SITE_URL + reverse("signup_form_confirm", args=[signup_form.public_id, token])


def _send(signup_form: SignupForm, contact: Contact, subject: str, template: str, **extra: Any):  # type: ignore[no-untyped-def]
    workspace = signup_form.workspace
    context = {"form": signup_form, "contact": contact, "workspace": workspace, **extra}
    send_workspace_email(
        workspace=workspace,
        to=[contact.email],
        subject=subject,
        text=render_to_string(f"contacts/public/email/{template}.txt", context),
        html=render_to_string(f"contacts/public/email/{template}.html", context),
        reply_to=[workspace.default_from_email] if workspace.default_from_email else None,
        from_email=workspace_sender(workspace),
    )


def send_confirmation_email(signup_form: SignupForm, contact: Contact, token: str) -> None:
    expires = timezone.now() + confirm_max_age()
    _send(
        signup_form,
        contact,
        f"Confirm your subscription to {signup_form.workspace.name}",
        "confirm",
        url=confirm_url(signup_form, token),
        expires=expires,
    )


def send_lead_magnet_email(signup_form: SignupForm, contact: Contact) -> None:
    subject = signup_form.lead_magnet_subject or f"Your download from {signup_form.workspace.name}"
    _send(signup_form, contact, subject, "lead_magnet", url=signup_form.lead_magnet_url)
