"""Validation of contact fields and custom attributes, shared by the API, imports and forms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from workspaces.timezones import is_known_timezone

from .models import Contact, CustomField, FieldType, normalise_email

TRUE_WORDS = {"true", "yes", "y", "1", "on"}
FALSE_WORDS = {"false", "no", "n", "0", "off", ""}
TEXT_LIMITS = {
    f.name: f.max_length
    for f in Contact._meta.concrete_fields
    if f.name in {"external_id", "first_name", "last_name", "phone", "timezone", "locale"}
}
MAX_ATTRIBUTES = 200
MAX_ATTRIBUTE_BYTES = 16_384


def clean_email(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("An email address is required.")
    email = normalise_email(value)
    validate_email(email)
    if len(email) > 254:
        raise ValidationError("An email address has at most 254 characters.")
    return email


def clean_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for parse in (dt.date.fromisoformat, lambda t: dt.datetime.fromisoformat(t).date()):
        try:
            return parse(text)
        except ValueError:
            continue
    for pattern in ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValidationError(f"“{text}” is not a date; use YYYY-MM-DD.")


def clean_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValidationError(f"“{value}” is not yes or no.")


def clean_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValidationError("Expected a number, got true/false.")
    if isinstance(value, int | float):
        return value
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation as exc:
        raise ValidationError(f"“{value}” is not a number.") from exc
    return int(number) if number == number.to_integral_value() else float(number)


def clean_custom_value(field: CustomField, value: Any) -> Any:
    if value is None or value == "":
        return None
    if field.field_type == FieldType.NUMBER:
        return clean_number(value)
    if field.field_type == FieldType.DATE:
        return clean_date(value).isoformat()
    if field.field_type == FieldType.BOOLEAN:
        return clean_boolean(value)
    if field.field_type == FieldType.CHOICE:
        text = str(value).strip()
        if text not in field.choices:
            raise ValidationError(f"“{text}” is not one of: {', '.join(field.choices)}.")
        return text
    return str(value)


def clean_attributes(
    attributes: Mapping[str, Any], definitions: Mapping[str, CustomField]
) -> dict[str, Any]:
    """Free-form attributes; those with a custom field definition are checked and converted.
    Raises ValidationError keyed by `attributes.<key>`."""
    if not isinstance(attributes, Mapping):
        raise ValidationError({"attributes": "Attributes must be an object of name → value."})
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValidationError({"attributes": f"At most {MAX_ATTRIBUTES} attributes per contact."})
    cleaned, errors = {}, {}
    for key, value in attributes.items():
        field = definitions.get(key)
        try:
            cleaned[key] = clean_custom_value(field, value) if field else value
        except ValidationError as exc:
            errors[f"attributes.{key}"] = exc.messages
    if errors:
        raise ValidationError(errors)
    if len(repr(cleaned)) > MAX_ATTRIBUTE_BYTES:
        raise ValidationError({"attributes": "Attributes are too large (16 KB at most)."})
    return cleaned


def clean_contact_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """Checks the standard contact fields present in `data`; errors keyed by field."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}

    def attempt(field: str, clean: Any) -> None:
        try:
            cleaned[field] = clean(data[field])
        except ValidationError as exc:
            errors[field] = exc.messages

    if "email" in data:
        attempt("email", clean_email)
    for field, limit in TEXT_LIMITS.items():
        if field in data:
            attempt(field, lambda v, limit=limit, field=field: _clean_text(v, limit, field))
    if cleaned.get("external_id") == "":
        cleaned["external_id"] = None
    if cleaned.get("timezone"):
        attempt("timezone", lambda _v: _clean_timezone(cleaned["timezone"]))
    if data.get("birthday") not in (None, ""):
        attempt("birthday", clean_date)
    elif "birthday" in data:
        cleaned["birthday"] = None
    if errors:
        raise ValidationError(errors)
    return cleaned


def _clean_text(value: Any, limit: int, field: str) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        raise ValidationError(f"{field} has at most {limit} characters.")
    return text


def _clean_timezone(name: str) -> str:
    if not is_known_timezone(name):
        raise ValidationError(f"“{name}” is not a time zone (e.g. Europe/Paris).")
    return name


def field_definitions(workspace: Any, keys: Iterable[str] | None = None) -> dict[str, CustomField]:
    fields = CustomField.objects.for_workspace(workspace)
    if keys is not None:
        fields = fields.filter(key__in=list(keys))
    return {field.key: field for field in fields}
