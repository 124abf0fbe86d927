"""CSV export of contacts: the same filters as the contact list, streamed row by row from a
server-side cursor, with every cell made safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from workspaces.models import Workspace

from .models import Contact, CustomField, SegmentMembership, SubscriptionStatus
from .queries import ContactFilters, filter_contacts

STANDARD_COLUMNS = [
    "email",
    "first_name",
    "last_name",
    "external_id",
    "phone",
    "status",
    "stage",
    "persona",
    "tags",
    "created_at",
]
FILTER_PARAMETERS = ("status", "stage", "persona", "tag", "q", "segment")
# A cell starting with one of these is read as a formula by Excel, LibreOffice and Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CURSOR_FETCH = 2000
ROWS_PER_WRITE = 500


def contacts_to_export(
    workspace: Workspace,
    *,
    status: str = "",
    stage: str = "",
    persona: str = "",
    tag: str = "",
    q: str = "",
    segment: str = "",
) -> QuerySet[Contact]:
    """The contacts the list shows for these query parameters (stage, persona, tag and
    segment are public ids; segment keeps its current members). A malformed value is an
    error naming the parameter, not "everyone"."""
    errors: dict[str, str] = {}
    if status and status not in SubscriptionStatus.values:
        errors["status"] = (
            f"“{status}” is not a status: use one of {', '.join(SubscriptionStatus.values)}."
        )
    ids = {}
    for name, value in (("stage", stage), ("persona", persona), ("tag", tag), ("segment", segment)):
        try:
            ids[name] = uuid.UUID(value) if value else None
        except ValueError:
            errors[name] = f"“{value}” is not a {name} id."
    if len(q) > 200:
        errors["q"] = "The search has at most 200 characters."
    if errors:
        raise ValidationError(errors)
    segment_id = ids.pop("segment")
    filters = ContactFilters(q=q.strip(), status=status, **ids)
    contacts = filter_contacts(workspace, filters)
    if segment_id is None:
        return contacts
    members = SegmentMembership.objects.for_workspace(workspace).filter(
        segment__public_id=segment_id, contact=OuterRef("pk"), exited_at__isnull=True
    )
    return contacts.filter(Exists(members))


def filter_parameters(query: Mapping[str, str]) -> dict[str, str]:
    return {name: query.get(name, "").strip() for name in FILTER_PARAMETERS}


def safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _attribute_text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


def export_rows(workspace: Workspace, contacts: QuerySet[Contact]) -> Iterator[list[Any]]:
    """The header, then one row per contact: standard columns and every custom field."""
    custom_keys = list(
        CustomField.objects.for_workspace(workspace).order_by("key").values_list("key", flat=True)
    )
    yield [*STANDARD_COLUMNS, *custom_keys]
    rows = (
        contacts.select_related("lifecycle_stage", "persona")
        .prefetch_related("tags")
        .order_by("pk")
        .iterator(chunk_size=ROWS_PER_CURSOR_FETCH)
    )
    for contact in rows:
        standard = [
            contact.email,
            contact.first_name,
            contact.last_name,
            contact.external_id or "",
            contact.phone,
            contact.status,
            contact.lifecycle_stage.name if contact.lifecycle_stage else "",
            contact.persona.name if contact.persona else "",
            ", ".join(sorted(tag.name for tag in contact.tags.all())),
            contact.created_at.isoformat(),
        ]
        custom = [_attribute_text(contact.attributes.get(key)) for key in custom_keys]
        yield [safe_cell(value) for value in (*standard, *custom)]


def csv_chunks(rows: Iterable[list[Any]]) -> Iterator[str]:
    """CSV text a few hundred rows at a time, with a BOM so spreadsheets read UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % ROWS_PER_WRITE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_filename(workspace: Workspace) -> str:
    return f"{workspace.slug}-contacts-{timezone.localdate():%Y-%m-%d}.csv"
