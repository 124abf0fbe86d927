"""Segment's HTTP Tracking API in Mailpath's terms.

`parse_call` reads one Segment call (identify, track, page, screen, group, alias) exactly
as Segment's libraries send it and turns it into an `EventInput` or an identity call;
`ingest_calls` writes a whole request: identity calls first, in order, so the events of
the same batch find the contact they announce, then every event in one `record_events`.
`identify_contact` is the identify service: find the contact, update or create it from
the traits, and tie the visitor's earlier activity to it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from workspaces.models import Workspace

from .attributes import clean_email
from .models import Contact, Event, Source
from .services import (
    EventInput,
    link_anonymous_activity,
    record_events,
    update_contact,
    upsert_contacts,
)

MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_LENGTH = 255
MAX_EVENT_NAME_LENGTH = 200
MAX_REVENUE = Decimal("999999999999.99")
EVENT_CALLS = ("track", "page", "screen", "group")
CALL_TYPES = ("identify", "alias", *EVENT_CALLS)
# What Mailpath names the events that Segment calls by their call type.
EVENT_NAMES = {"page": "page_viewed", "screen": "screen_viewed", "group": "group_joined"}

# Segment trait → contact field; the first trait present wins.
TRAIT_FIELDS = {
    "email": ("email",),
    "first_name": ("firstName", "first_name"),
    "last_name": ("lastName", "last_name"),
    "phone": ("phone",),
    "birthday": ("birthday",),
    "timezone": ("timezone",),
    "locale": ("locale",),
}
NAME_TRAITS = {"name"}
_TIME = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[Tt ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?\s*$"
)


class CallError(ValueError):
    """A call that cannot be stored; `errors` maps a field of the call to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class IdentifyCall:
    user_id: str
    anonymous_id: str
    traits: dict[str, Any]


@dataclass
class AliasCall:
    user_id: str
    previous_id: str


Call = EventInput | IdentifyCall | AliasCall


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    errors: list[tuple[int, dict[str, list[str]]]] = field(default_factory=list)


@dataclass
class IdentifyResult:
    contact: Contact | None
    status: str  # created | updated | unmatched
    linked: int = 0


# --- reading calls ---------------------------------------------------------------------


def call_size(call: Any) -> int:
    """The size of one call as JSON (how the 32 KB per call limit is measured in a batch)."""
    return len(json.dumps(call, ensure_ascii=False, separators=(",", ":")).encode())


def parse_call(
    payload: Any,
    call_type: str,
    *,
    now: dt.datetime,
    batch_context: Mapping[str, Any] | None = None,
) -> Call:
    """One Segment call → what Mailpath stores. Raises CallError naming each bad field."""
    if not isinstance(payload, Mapping):
        raise CallError({"call": ["A call is a JSON object."]})
    if call_type not in CALL_TYPES:
        known = ", ".join(CALL_TYPES)
        raise CallError({"type": [f"“{call_type}” is not a call type; use one of: {known}."]})
    errors: dict[str, list[str]] = {}

    def read(name: str, reader: Any, *args: Any) -> Any:
        try:
            return reader(payload.get(name), name, *args)
        except ValidationError as exc:
            errors[name] = exc.messages
            return None

    user_id = read("userId", _identifier) or ""
    if call_type == "alias":
        previous_id = read("previousId", _identifier) or ""
        if not errors and not (user_id and previous_id):
            errors["userId"] = ["An alias call needs both userId and previousId."]
        _raise_if(errors)
        return AliasCall(user_id=user_id, previous_id=previous_id)

    anonymous_id = read("anonymousId", _identifier) or ""
    if "userId" not in errors and "anonymousId" not in errors and not (user_id or anonymous_id):
        errors["userId"] = ["Give a userId or an anonymousId."]
    if call_type == "identify":
        traits = read("traits", _object)
        _raise_if(errors)
        return IdentifyCall(user_id=user_id, anonymous_id=anonymous_id, traits=traits or {})

    occurred_at = _occurred_at(payload, now, errors)
    context = read("context", _object) or {}
    if batch_context:
        context = {**batch_context, **context}
    message_id = read("messageId", _identifier) or None
    name, properties = _event_name_and_properties(payload, call_type, errors)
    revenue, currency = _revenue(properties, errors)
    _raise_if(errors)
    return EventInput(
        name=name,
        occurred_at=occurred_at,
        properties=properties,
        context=context,
        user_id=user_id,
        anonymous_id=anonymous_id,
        message_id=message_id,
        revenue=revenue,
        currency=currency,
        source=Source.API,
    )


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise CallError(errors)


def _identifier(value: Any, name: str) -> str:
    """Segment ids are strings; some libraries send numbers, which are kept as text."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(f"{name} must be a string.")
    text = str(value).strip()
    if len(text) > MAX_ID_LENGTH:
        raise ValidationError(f"{name} has at most {MAX_ID_LENGTH} characters.")
    return text


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be an object.")
    return dict(value)


def parse_time(value: Any) -> dt.datetime:
    """An ISO 8601 time as Segment sends it; lenient about one-digit months and days
    (Segment's own batch example has "2015-2-02T00:30:08.276Z"). No zone means UTC."""
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationError(f"“{value}” is not an ISO 8601 time, e.g. 2026-11-23T09:30:00Z.")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=_zone(zone),
        )
    except ValueError as exc:
        raise ValidationError(f"“{value}” is not a valid time: {exc}.") from exc
    return moment


def _zone(text: str | None) -> dt.tzinfo:
    if not text or text in "Zz":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return dt.timezone(sign * offset)


def _occurred_at(
    payload: Mapping[str, Any], now: dt.datetime, errors: dict[str, list[str]]
) -> dt.datetime | None:
    """`timestamp` when given; else `originalTimestamp` corrected for the sender's clock
    skew with `sentAt`, as Segment does; else None (the time it is received)."""
    times: dict[str, dt.datetime] = {}
    for name in ("timestamp", "originalTimestamp", "sentAt"):
        if payload.get(name) not in (None, ""):
            try:
                times[name] = parse_time(payload[name])
            except ValidationError as exc:
                errors[name] = exc.messages
    if "timestamp" in times:
        return times["timestamp"]
    if "originalTimestamp" in times:
        if "sentAt" in times:
            return now - (times["sentAt"] - times["originalTimestamp"])
        return times["originalTimestamp"]
    return None


def _event_name_and_properties(
    payload: Mapping[str, Any], call_type: str, errors: dict[str, list[str]]
) -> tuple[str, dict[str, Any]]:
    properties_key = "traits" if call_type == "group" else "properties"
    properties = payload.get(properties_key)
    if properties is None:
        properties = {}
    elif not isinstance(properties, Mapping):
        errors[properties_key] = [f"{properties_key} must be an object."]
        properties = {}
    properties = dict(properties)
    if call_type == "track":
        name = payload.get("event")
        if not isinstance(name, str) or not name.strip():
            errors["event"] = ["A track call needs an event name (a non-empty string)."]
            return "", properties
        if len(name) > MAX_EVENT_NAME_LENGTH:
            errors["event"] = [f"An event name has at most {MAX_EVENT_NAME_LENGTH} characters."]
        return name.strip(), properties
    if call_type == "group":
        try:
            group_id = _identifier(payload.get("groupId"), "groupId")
        except ValidationError as exc:
            errors["groupId"] = exc.messages
            group_id = ""
        if not group_id and "groupId" not in errors:
            errors["groupId"] = ["A group call needs a groupId."]
        return EVENT_NAMES[call_type], {"groupId": group_id, "traits": properties}
    # page and screen: the name and category of the page go into the properties.
    for key in ("name", "category"):
        value = payload.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            errors[key] = [f"{key} must be a string."]
        elif value:
            properties.setdefault(key, value)
    return EVENT_NAMES[call_type], properties


def _revenue(
    properties: Mapping[str, Any], errors: dict[str, list[str]]
) -> tuple[Decimal | None, str]:
    """Order value from `properties.revenue`, else `properties.total`, with `currency`."""
    key = "revenue" if properties.get("revenue") is not None else "total"
    value = properties.get(key)
    revenue = None
    if value is not None and value != "":
        try:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise InvalidOperation
            revenue = Decimal(str(value).strip()).quantize(Decimal("0.01"))
            if not revenue.is_finite() or abs(revenue) > MAX_REVENUE:
                raise InvalidOperation
        except InvalidOperation:
            errors[f"properties.{key}"] = [f"“{value}” is not an amount, e.g. 14.99."]
            revenue = None
    currency = properties.get("currency") or ""
    if currency and (not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha()):
        errors["properties.currency"] = [
            f"“{currency}” is not a three-letter currency code, e.g. EUR."
        ]
        currency = ""
    return revenue, currency.upper()


# --- identify --------------------------------------------------------------------------


def contact_data_from_traits(
    traits: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Split Segment traits into contact fields and free attributes.

    Returns (fields, attributes, origin) where origin maps a contact field back to the
    trait it came from, so an error can name what the sender sent."""
    fields: dict[str, Any] = {}
    origin: dict[str, str] = {}
    used: set[str] = set()
    for contact_field, trait_names in TRAIT_FIELDS.items():
        for trait in trait_names:
            if trait in traits:
                used.add(trait)
                if contact_field not in fields and traits[trait] is not None:
                    fields[contact_field] = traits[trait]
                    origin[contact_field] = trait
    full_name = traits.get("name")
    if isinstance(full_name, str) and full_name.strip():
        used.add("name")
        first, _, last = full_name.strip().partition(" ")
        if "first_name" not in fields and "last_name" not in fields:
            fields["first_name"], fields["last_name"] = first, last.strip()
            origin["first_name"] = origin["last_name"] = "name"
    attributes = {key: value for key, value in traits.items() if key not in used}
    return fields, attributes, origin


@transaction.atomic
def identify_contact(
    *,
    workspace: Workspace,
    user_id: str = "",
    anonymous_id: str = "",
    traits: Mapping[str, Any] | None = None,
) -> IdentifyResult:
    """Segment's identify: the contact with this userId (external id), else with
    traits.email, is updated from the traits, or created when there is an email.
    Earlier events of the anonymousId and of the userId are tied to it.
    Raises ValidationError keyed by `traits.<name>`."""
    fields, attributes, origin = contact_data_from_traits(traits or {})
    email = _clean_trait_email(fields, origin)
    contacts = Contact.objects.for_workspace(workspace)
    contact = contacts.filter(external_id=user_id).first() if user_id else None
    if contact is None and email:
        contact = contacts.filter(email=email).first()
        if contact and user_id and contact.external_id not in (None, "", user_id):
            raise ValidationError(
                {
                    f"traits.{origin['email']}": [
                        "This address belongs to a contact with another userId."
                    ]
                }
            )
    if contact is None and not email:
        _remember_user_of_anonymous(workspace, anonymous_id, user_id)
        return IdentifyResult(None, "unmatched")
    if contact is None:
        contact = _create_from_traits(workspace, fields, attributes, origin, user_id)
        status = "created"
    else:
        _update_from_traits(workspace, contact, fields, attributes, origin, user_id, email)
        status = "updated"
    linked = link_anonymous_activity(
        workspace=workspace, contact=contact, anonymous_id=anonymous_id, user_id=user_id
    )
    return IdentifyResult(contact, status, linked)


def _clean_trait_email(fields: dict[str, Any], origin: dict[str, str]) -> str:
    if "email" not in fields:
        return ""
    try:
        fields["email"] = clean_email(fields["email"])
    except ValidationError as exc:
        raise ValidationError({f"traits.{origin['email']}": exc.messages}) from exc
    return fields["email"]


def _create_from_traits(workspace, fields, attributes, origin, user_id) -> Contact:  # type: ignore[no-untyped-def]
    row = {**fields, "attributes": attributes}
    if user_id:
        row["external_id"] = user_id
    [result] = upsert_contacts(workspace=workspace, rows=[row], source=Source.API)
    if result.contact is None:
        raise ValidationError(_trait_errors(result.errors, origin))
    return result.contact


def _update_from_traits(workspace, contact, fields, attributes, origin, user_id, email) -> None:  # type: ignore[no-untyped-def]
    if email and email != contact.email:
        taken = Contact.objects.for_workspace(workspace).filter(email=email).exclude(pk=contact.pk)
        if taken.exists():
            message = "Another contact already has this address."
            raise ValidationError({f"traits.{origin['email']}": [message]})
    data: dict[str, Any] = dict(fields)
    if user_id and not contact.external_id:
        data["external_id"] = user_id
    if attributes:
        data["attributes"] = {**contact.attributes, **attributes}
    if not data:
        return
    try:
        update_contact(workspace=workspace, contact=contact, data=data, source=Source.API)
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"traits": exc.messages}
        raise ValidationError(_trait_errors(errors, origin)) from exc


def _trait_errors(errors: Mapping[str, list[str]], origin: Mapping[str, str]) -> dict:
    """Errors keyed by contact field → keyed by the trait the sender used."""
    named: dict[str, list[str]] = {}
    for key, messages in errors.items():
        if key in origin:
            key = f"traits.{origin[key]}"
        elif key.startswith("attributes."):
            key = "traits." + key.removeprefix("attributes.")
        elif key in ("attributes", "__all__"):
            key = "traits"
        else:
            key = f"traits.{key}"
        named.setdefault(key, []).extend(messages)
    return named


def _remember_user_of_anonymous(workspace: Workspace, anonymous_id: str, user_id: str) -> None:
    """An identify Mailpath cannot attach to a contact yet (no email, unknown userId): the
    visitor's anonymous events take the userId, so a later identify with an email links
    them all."""
    if anonymous_id and user_id:
        Event.objects.for_workspace(workspace).filter(
            contact__isnull=True, anonymous_id=anonymous_id, user_id=""
        ).update(user_id=user_id)


@transaction.atomic
def alias_user(*, workspace: Workspace, user_id: str, previous_id: str) -> Contact | None:
    """Segment's alias: `previous_id` (an anonymousId or an earlier userId) is the same
    person as `user_id`. A contact known by the old userId takes the new one."""
    contacts = Contact.objects.for_workspace(workspace)
    contact = contacts.filter(external_id=user_id).first()
    if contact is None:
        contact = contacts.filter(external_id=previous_id).first()
        if contact is not None:
            contact.external_id = user_id
            contact.save(update_fields=["external_id", "updated_at"])
    if contact is not None:
        link_anonymous_activity(
            workspace=workspace, contact=contact, anonymous_id=previous_id, user_id=previous_id
        )
        return contact
    unlinked = Event.objects.for_workspace(workspace).filter(contact__isnull=True)
    unlinked.filter(user_id=previous_id).update(user_id=user_id)
    unlinked.filter(anonymous_id=previous_id, user_id="").update(user_id=user_id)
    return None


# --- writing a request -----------------------------------------------------------------


def ingest_calls(
    *,
    workspace: Workspace,
    calls: Sequence[tuple[int, Call]],
    now: dt.datetime | None = None,
) -> IngestReport:
    """Write parsed calls: identity calls in order, then every event in one bulk write.
    An identity call that fails is reported by its index; the others are written."""
    now = now or timezone.now()
    report = IngestReport()
    events: list[EventInput] = []
    for index, call in calls:
        if isinstance(call, EventInput):
            events.append(call)
            continue
        try:
            if isinstance(call, IdentifyCall):
                identify_contact(
                    workspace=workspace,
                    user_id=call.user_id,
                    anonymous_id=call.anonymous_id,
                    traits=call.traits,
                )
            else:
                alias_user(workspace=workspace, user_id=call.user_id, previous_id=call.previous_id)
        except ValidationError as exc:
            report.errors.append((index, _error_dict(exc)))
            continue
        report.accepted += 1
    if events:
        counts = record_events(workspace=workspace, events=events, now=now)
        report.accepted += counts["recorded"] + counts["duplicates"]
        report.duplicates += counts["duplicates"]
    return report


def _error_dict(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "error_dict") else {"call": exc.messages}
