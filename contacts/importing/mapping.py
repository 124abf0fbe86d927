"""Which contact field each column of a file goes into: the automatic guess (knowing the
exports of Mailchimp, Mautic and listmonk, custom fields and common synonyms), the choices
the mapping form offers, and the check of the mapping the user confirms."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError

from ..models import CustomField
from .rejects import REASON_COLUMN

IGNORE = ""
STANDARD_TARGETS = {
    "email": "Email address",
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name (split into first and last name)",
    "external_id": "External id (your own user id)",
    "phone": "Phone",
    "timezone": "Time zone",
    "locale": "Locale",
    "birthday": "Birthday",
    "tags": "Tags (separated by commas)",
    "status": "Status (unsubscribed, blocklisted, cleaned… are honoured)",
    "unsubscribed_when_set": "Unsubscribed when filled in (e.g. UNSUB_TIME)",
    "bounced_when_set": "Bounced when filled in (e.g. CLEAN_TIME)",
    "attributes_json": "Attributes (a JSON object)",
}
REPEATABLE_TARGETS = {"tags"}
ATTRIBUTE_PREFIX = "attr:"
ATTRIBUTE_KEY = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,63}$")

# Column names in each tool's export (normalised: lower case, words joined by "_").
SOURCE_MAPPINGS: dict[str, dict[str, str]] = {
    "mailchimp": {
        "email_address": "email",
        "first_name": "first_name",
        "last_name": "last_name",
        "phone_number": "phone",
        "birthday": "attr:birthday",  # MM/DD, no year
        "address": "attr:address",
        "member_rating": "attr:member_rating",
        "optin_time": "attr:optin_time",
        "optin_ip": "attr:optin_ip",
        "confirm_time": "attr:confirm_time",
        "confirm_ip": "attr:confirm_ip",
        "timezone": "timezone",
        "cc": "attr:country_code",
        "region": "attr:region",
        "notes": "attr:notes",
        "tags": "tags",
        "unsub_time": "unsubscribed_when_set",
        "unsub_reason": "attr:unsubscribe_reason",
        "clean_time": "bounced_when_set",
        "latitude": IGNORE,
        "longitude": IGNORE,
        "gmtoff": IGNORE,
        "dstoff": IGNORE,
        "last_changed": IGNORE,
        "leid": IGNORE,
        "euid": IGNORE,
        "unsub_campaign_title": IGNORE,
        "unsub_campaign_id": IGNORE,
        "unsub_reason_other": IGNORE,
        "clean_campaign_title": IGNORE,
        "clean_campaign_id": IGNORE,
    },
    "mautic": {
        "email": "email",
        "firstname": "first_name",
        "lastname": "last_name",
        "phone": "phone",
        "mobile": "attr:mobile",
        "timezone": "timezone",
        "preferred_locale": "locale",
        "tags": "tags",
        "id": "attr:mautic_id",
        "points": "attr:points",
        "stage": "attr:mautic_stage",
        "date_added": IGNORE,
        "date_modified": IGNORE,
        "date_identified": IGNORE,
        "last_active": "attr:last_active",
        "owner_id": IGNORE,
        "created_by": IGNORE,
        "modified_by": IGNORE,
        "attribution": IGNORE,
        "attribution_date": IGNORE,
    },
    "listmonk": {
        "uuid": "attr:listmonk_uuid",
        "email": "email",
        "name": "full_name",
        "attributes": "attributes_json",
        "status": "status",
        "created_at": IGNORE,
        "updated_at": IGNORE,
    },
}
SYNONYMS = {
    "email": {"email", "email_address", "e_mail", "emailaddress", "mail", "email_id"},
    "first_name": {"first_name", "firstname", "first", "given_name", "fname", "forename"},
    "last_name": {"last_name", "lastname", "last", "surname", "family_name", "lname"},
    "full_name": {"name", "full_name", "fullname", "contact_name"},
    "external_id": {"external_id", "user_id", "userid", "customer_id", "customerid"},
    "phone": {"phone", "phone_number", "telephone", "tel", "mobile", "mobile_phone"},
    "timezone": {"timezone", "time_zone", "tz"},
    "locale": {"locale", "language", "lang", "preferred_locale"},
    "birthday": {"birthday", "birth_date", "date_of_birth", "dob", "birthdate"},
    "tags": {"tags", "tag", "labels"},
    "status": {"status", "subscription_status", "subscriber_status"},
    "attributes_json": {"attributes", "attribs"},
}
# Columns that describe the row in the tool it came from (including Mailpath's own export).
IGNORED_BY_DEFAULT = {
    "created_at",
    "updated_at",
    "stage",
    "lifecycle_stage",
    "persona",
    REASON_COLUMN,
}


def normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_")


def attribute_key(header: str) -> str:
    return normalise_header(header)[:64] or "column"


def detect_source(headers: Sequence[str]) -> str:
    """Which tool exported this file: mailchimp, mautic, listmonk, plain, or "" if unknown."""
    names = {normalise_header(h) for h in headers}
    if "email_address" in names and names & {"member_rating", "optin_time", "leid", "euid"}:
        return "mailchimp"
    if "email" in names and "attributes" in names and names & {"uuid", "name", "status"}:
        return "listmonk"
    if "email" in names and names & {"firstname", "lastname"}:
        return "mautic"
    if "email" in names and names & {"first_name", "last_name"}:
        return "plain"
    return ""


def auto_map(headers: Sequence[str], custom_fields: Sequence[CustomField] = ()) -> dict[str, str]:
    """A target for every column: the exporting tool's meaning where we know the tool,
    custom fields by key or label, common synonyms, else a new attribute."""
    by_name = {}
    for custom in custom_fields:
        by_name[normalise_header(custom.label)] = f"{ATTRIBUTE_PREFIX}{custom.key}"
        by_name[normalise_header(custom.key)] = f"{ATTRIBUTE_PREFIX}{custom.key}"
    known = SOURCE_MAPPINGS.get(detect_source(headers), {})
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        name = normalise_header(header)
        target = known.get(name)
        if target is None:
            target = by_name.get(name)
        if target is None:
            target = next((t for t, names in SYNONYMS.items() if name in names), None)
        if target is None:
            target = (
                IGNORE if name in IGNORED_BY_DEFAULT else ATTRIBUTE_PREFIX + attribute_key(header)
            )
        if target and target in used and target not in REPEATABLE_TARGETS:
            target = ATTRIBUTE_PREFIX + attribute_key(header)
            if target in used:
                target = IGNORE
        used.add(target)
        mapping[header] = target
    if "full_name" in used and {"first_name", "last_name"} & used:
        mapping = {h: (IGNORE if t == "full_name" else t) for h, t in mapping.items()}
    return mapping


def target_choices(
    headers: Sequence[str],
    custom_fields: Sequence[CustomField],
    mapping: Mapping[str, str] | None = None,
) -> list[tuple[str, Any]]:
    """Grouped choices for the mapping form's select of each column: the contact fields,
    the custom fields, and a new attribute per column (or as the automatic guess named it)."""
    custom_keys = {c.key for c in custom_fields}
    guessed = {
        t.removeprefix(ATTRIBUTE_PREFIX)
        for t in (mapping or {}).values()
        if t.startswith(ATTRIBUTE_PREFIX)
    }
    new_attributes = sorted(({attribute_key(h) for h in headers} | guessed) - custom_keys)
    choices: list[tuple[str, Any]] = [(IGNORE, "Don't import"), *STANDARD_TARGETS.items()]
    if custom_fields:
        choices.append(
            ("Custom fields", [(f"{ATTRIBUTE_PREFIX}{c.key}", c.label) for c in custom_fields])
        )
    choices.append(
        (
            "New attribute",
            [(f"{ATTRIBUTE_PREFIX}{key}", f"Attribute “{key}”") for key in new_attributes],
        )
    )
    return choices


def check_mapping(headers: Sequence[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """The mapping, complete and valid; errors keyed by column name."""
    errors: dict[str, list[str]] = {}
    claimed: dict[str, str] = {}
    clean: dict[str, str] = {}
    for header in headers:
        target = (mapping.get(header) or IGNORE).strip()
        if target.startswith(ATTRIBUTE_PREFIX):
            if not ATTRIBUTE_KEY.match(target.removeprefix(ATTRIBUTE_PREFIX)):
                errors[header] = ["Attribute names use lower-case letters, digits and _."]
        elif target and target not in STANDARD_TARGETS:
            errors[header] = [f"“{target}” is not a contact field."]
        if target and target not in REPEATABLE_TARGETS and target in claimed:
            errors[header] = [f"“{claimed[target]}” already goes into this field."]
        claimed.setdefault(target, header)
        clean[header] = target
    if "email" not in claimed:
        errors["__all__"] = [
            "Choose the column that holds the email addresses: every contact needs one."
        ]
    if errors:
        raise ValidationError(errors)
    return clean
