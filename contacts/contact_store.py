"""The write path of contacts in bulk: what `services.upsert_contacts` stores once it has
checked the rows and matched them to known contacts.

On PostgreSQL new contacts, their stage changes and consent records go in with COPY, known
contacts are updated by one UPDATE from a JSON document, and tags are linked by one INSERT.
Building a model instance per contact, consent record, stage change and tag link instead
costs most of the time a large import takes (bench/import_contacts.py measures it: about
7,000 contacts a second this way). SQLite keeps the ORM path. Every statement names the
workspace explicitly, as every query must.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, connection, models
from psycopg.types.json import Jsonb

from workspaces.models import Workspace

from .models import (
    ConsentRecord,
    Contact,
    LifecycleStage,
    Persona,
    StageChange,
    Suppression,
    SuppressionReason,
    Tag,
)

if TYPE_CHECKING:
    from .services import ConsentInput, ContactRow

SQL_PATH = True  # tests switch it off to run the ORM path on PostgreSQL too
TEXT_FIELDS = ("first_name", "last_name", "phone", "timezone", "locale")
UPDATE_BATCH = 500


def uses_sql() -> bool:
    return SQL_PATH and connection.vendor == "postgresql"


@dataclass
class Known:
    """A contact that a row matched: its id and its stage before this write."""

    pk: int
    stage_id: int | None


# --- finding known contacts and erased addresses -----------------------------------------


def find_contacts(workspace: Workspace, rows: Sequence[ContactRow]) -> dict[str, Known]:
    """Known contacts by "e:<email>" and "x:<external id>"."""
    emails = [row.fields["email"] for row in rows]
    external = [row.fields["external_id"] for row in rows if row.fields.get("external_id")]
    if not emails:
        return {}
    if uses_sql():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, email, external_id, lifecycle_stage_id FROM {Contact._meta.db_table} "
                "WHERE workspace_id = %s AND (email = ANY(%s) OR external_id = ANY(%s))",
                [workspace.pk, emails, external],
            )
            found = cursor.fetchall()
    else:
        found = (
            Contact.objects.for_workspace(workspace)
            .filter(models.Q(email__in=emails) | models.Q(external_id__in=external))
            .values_list("pk", "email", "external_id", "lifecycle_stage_id")
        )
    index: dict[str, Known] = {}
    for pk, email, external_id, stage_id in found:
        index[f"e:{email}"] = Known(pk, stage_id)
        if external_id:
            index[f"x:{external_id}"] = Known(pk, stage_id)
    return index


def erased_hashes(workspace: Workspace, hashes: Sequence[str]) -> set[str]:
    """The address hashes among `hashes` that an erasure suppressed."""
    if not hashes:
        return set()
    if uses_sql():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT email_hash FROM {Suppression._meta.db_table} "
                "WHERE workspace_id = %s AND reason = %s AND email_hash = ANY(%s)",
                [workspace.pk, SuppressionReason.ERASED, list(hashes)],
            )
            return {email_hash for (email_hash,) in cursor.fetchall()}
    found = Suppression.objects.for_workspace(workspace).filter(
        email_hash__in=list(hashes), reason=SuppressionReason.ERASED
    )
    return set(found.values_list("email_hash", flat=True))


# --- new contacts ----------------------------------------------------------------------


def insert_contacts(
    workspace: Workspace,
    rows: Sequence[tuple[ContactRow, str]],
    *,
    source: str,
    stage: LifecycleStage | None,
    persona: Persona | None,
    now: dt.datetime,
) -> list[int]:
    """Create a contact per (row, subscription status), already in the stage and persona;
    returns their ids in the order of the rows."""
    if not rows:
        return []
    values = [
        {
            **_row_basics(workspace, now),
            "email": row.fields["email"],
            "external_id": row.fields.get("external_id"),
            **{name: row.fields.get(name, "") for name in TEXT_FIELDS},
            "birthday": row.fields.get("birthday"),
            "attributes": row.attributes,
            "status": status,
            "source": source,
            "lifecycle_stage_id": stage.pk if stage else None,
            "persona_id": persona.pk if persona else None,
        }
        for row, status in rows
    ]
    try:
        created = _insert(workspace, Contact, values)
    except IntegrityError as exc:  # a concurrent writer added one of these addresses
        raise ValidationError(
            "Some of these contacts were added at the same moment; retry."
        ) from exc
    if not uses_sql():
        return [contact.pk for contact in created]
    emails = [value["email"] for value in values]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT email, id FROM {Contact._meta.db_table} "
            "WHERE workspace_id = %s AND email = ANY(%s)",
            [workspace.pk, emails],
        )
        ids = dict(cursor.fetchall())
    return [ids[email] for email in emails]


# --- known contacts --------------------------------------------------------------------


def _given_or_kept(name: str, cast: str = "") -> str:
    """A field the row names is set (even to null); one it leaves out keeps its value."""
    return (
        f"{name} = CASE WHEN v.fields ? '{name}' THEN (v.fields->>'{name}'){cast} ELSE c.{name} END"
    )


_GIVEN_FIELDS = ",\n    ".join(
    [
        _given_or_kept("external_id"),
        *(_given_or_kept(name) for name in TEXT_FIELDS),
        _given_or_kept("birthday", "::date"),
    ]
)
_UPDATE_CONTACTS = f"""
UPDATE contacts_contact AS c SET
    email = v.email,
    {_GIVEN_FIELDS},
    attributes = c.attributes || v.attributes,
    persona_id = COALESCE(%s::bigint, c.persona_id),
    updated_at = %s
FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, email text, fields jsonb, attributes jsonb)
WHERE c.id = v.id AND c.workspace_id = %s
"""


def update_contacts(
    workspace: Workspace,
    pairs: Sequence[tuple[ContactRow, int]],
    *,
    persona: Persona | None,
    now: dt.datetime,
) -> None:
    """Write each row's fields over its contact (fields the row leaves out are kept) and
    merge its attributes into the contact's."""
    if not pairs:
        return
    if uses_sql():
        document = json.dumps(
            [
                {
                    "id": pk,
                    "email": row.fields["email"],
                    "fields": row.fields,
                    "attributes": row.attributes,
                }
                for row, pk in pairs
            ],
            default=str,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                _UPDATE_CONTACTS, [persona.pk if persona else None, now, document, workspace.pk]
            )
        return
    contacts = Contact.objects.for_workspace(workspace).in_bulk([pk for _, pk in pairs])
    for row, pk in pairs:
        contact = contacts[pk]
        for name, value in row.fields.items():
            setattr(contact, name, value)
        contact.attributes = {**contact.attributes, **row.attributes}
        if persona:
            contact.persona = persona
        contact.updated_at = now
    names = {name for row, _ in pairs for name in row.fields} | {"attributes", "updated_at"}
    Contact.objects.for_workspace(workspace).bulk_update(
        list(contacts.values()),
        sorted(names | ({"persona"} if persona else set())),
        batch_size=UPDATE_BATCH,
    )


def record_stage_changes(
    workspace: Workspace,
    *,
    created_ids: Sequence[int],
    moving: Sequence[tuple[int, int | None]],
    stage: LifecycleStage,
    source: str,
    now: dt.datetime,
) -> list[int]:
    """Move known contacts, given as (id, previous stage id), into the stage (new ones were
    inserted in it) and record one StageChange per contact, with the stage names of the
    time. Returns the ids of the contacts that changed stage."""
    if moving:
        Contact.objects.for_workspace(workspace).filter(pk__in=[pk for pk, _ in moving]).update(
            lifecycle_stage=stage, updated_at=now
        )
    moves = [(pk, None) for pk in created_ids] + list(moving)
    if not moves:
        return []
    names = dict(LifecycleStage.objects.for_workspace(workspace).values_list("pk", "name"))
    _insert(
        workspace,
        StageChange,
        (
            {
                **_row_basics(workspace, now),
                "contact_id": pk,
                "from_stage_id": old,
                "from_name": names.get(old, ""),
                "to_stage_id": stage.pk,
                "to_name": stage.name,
                "changed_at": now,
                "source": source,
            }
            for pk, old in moves
        ),
    )
    return [pk for pk, _ in moves]


def link_tags(workspace: Workspace, links: Iterable[tuple[int, int]]) -> None:
    """Tag contacts: (contact id, tag id) pairs, both of this workspace; links that exist
    already are left alone."""
    pairs = sorted(set(links))
    if not pairs:
        return
    through = Contact.tags.through
    if not uses_sql():
        through.objects.bulk_create(
            [through(contact_id=c, tag_id=t) for c, t in pairs],
            ignore_conflicts=True,
            batch_size=5000,
        )
        return
    contact_table, tag_table = Contact._meta.db_table, Tag._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {through._meta.db_table} (contact_id, tag_id) "
            "SELECT v.contact_id, v.tag_id "
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(contact_id, tag_id) "
            f"JOIN {contact_table} c ON c.id = v.contact_id AND c.workspace_id = %s "
            f"JOIN {tag_table} t ON t.id = v.tag_id AND t.workspace_id = %s "
            "ON CONFLICT DO NOTHING",
            [[c for c, _ in pairs], [t for _, t in pairs], workspace.pk, workspace.pk],
        )


def insert_consents(
    workspace: Workspace, contact_ids: Sequence[int], consent: ConsentInput, now: dt.datetime
) -> None:
    """One consent record per contact, as `services.record_consents` keeps them."""
    _insert(
        workspace,
        ConsentRecord,
        (
            {
                **_row_basics(workspace, now),
                "contact_id": pk,
                "kind": consent.kind,
                "method": consent.method,
                "source": consent.source[:255],
                "ip_address": consent.ip_address or None,
                "text_shown": consent.text_shown,
                "topic_id": None,
                "occurred_at": now,
            }
            for pk in contact_ids
        ),
    )


# --- inserting rows --------------------------------------------------------------------


def _insert(
    workspace: Workspace, model: type[models.Model], rows: Iterable[dict[str, Any]]
) -> list[Any]:
    """Insert rows (column values by attribute name): COPY on PostgreSQL, which returns
    nothing; bulk_create otherwise, which returns the instances."""
    if uses_sql():
        _copy_insert(model, rows)
        return []
    manager = model.objects.for_workspace(workspace)  # type: ignore[attr-defined]
    return manager.bulk_create([model(**row) for row in rows], batch_size=1000)


def _row_basics(workspace: Workspace, now: dt.datetime) -> dict[str, Any]:
    return {
        "workspace_id": workspace.pk,
        "public_id": _random_uuid(),
        "created_at": now,
        "updated_at": now,
    }


_random_pool: list[bytes] = []


def _random_uuid() -> uuid.UUID:
    """uuid4() without a system call per id: random bytes are drawn 64 KiB at a time."""
    if not _random_pool:
        block = os.urandom(16 * 4096)
        _random_pool.extend(block[i : i + 16] for i in range(0, len(block), 16))
    return uuid.UUID(bytes=_random_pool.pop(), version=4)


def _copy_insert(model: type[models.Model], rows: Iterable[dict[str, Any]]) -> None:
    """COPY rows into the model's table. Columns a row leaves out take the field's default
    (or NULL), so a column added to the model later does not break this path."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    given = list(first)
    json_positions = [
        i
        for i, name in enumerate(given)
        if isinstance(model._meta.get_field(name), models.JSONField)
    ]
    filled: dict[str, Any] = {}
    for model_field in model._meta.concrete_fields:
        if model_field.primary_key or model_field.attname in first:
            continue
        value = model_field.get_default()  # "" for text fields without a default
        if model_field.unique or (value is None and not model_field.null):
            raise ImproperlyConfigured(
                f"The bulk write does not know what to put in {model.__name__}.{model_field.name}."
            )
        filled[model_field.column] = model_field.get_db_prep_save(value, connection)
    columns = [model._meta.get_field(name).column for name in given] + list(filled)
    constants = list(filled.values())
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        for row in itertools.chain([first], rows):
            values = [row[name] for name in given]
            for i in json_positions:
                values[i] = Jsonb(values[i])
            copy.write_row(values + constants)
