"""The bulk write path of the event stream: the hottest write in Mailpath.

On PostgreSQL an ingest batch is two statements, each with one JSON parameter: an INSERT
from `jsonb_to_recordset` that lets the partial unique index drop repeated message ids
(ON CONFLICT DO NOTHING) and RETURNS the rows it stored, and one UPDATE moving each
contact's last_activity_at forward. Building the same through the ORM costs several
times more per batch (expression compiling and client-side quoting of every value);
bench/ingest_events.py measures it. SQLite keeps the ORM path. Both statements name the
workspace explicitly, as every query must.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import Case, DateTimeField, Q, Value, When
from django.db.models.functions import Coalesce, Greatest

from workspaces.models import Workspace

from .models import Contact, Event

if TYPE_CHECKING:
    from .services import EventInput

Stored = tuple[int, int | None, dt.datetime]  # (event id, contact id, occurred_at)

_INSERT_EVENTS = """
INSERT INTO contacts_event (workspace_id, public_id, created_at, updated_at, received_at,
    contact_id, anonymous_id, user_id, name, properties, context, occurred_at, source,
    revenue, currency, message_id)
SELECT %s, gen_random_uuid(), %s, %s, %s, r.contact_id, r.anonymous_id, r.user_id, r.name,
    r.properties, r.context, r.occurred_at, r.source, r.revenue, r.currency, r.message_id
FROM jsonb_to_recordset(%s::jsonb) AS r(contact_id bigint, anonymous_id text, user_id text,
    name text, properties jsonb, context jsonb, occurred_at timestamptz, source text,
    revenue numeric, currency text, message_id text)
ON CONFLICT (workspace_id, message_id) WHERE message_id IS NOT NULL DO NOTHING
RETURNING id, contact_id, occurred_at
"""

_TOUCH_ACTIVITY = """
UPDATE contacts_contact AS c SET last_activity_at = v.at
FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, at timestamptz)
WHERE c.id = v.id AND c.workspace_id = %s
  AND (c.last_activity_at IS NULL OR c.last_activity_at < v.at)
"""


def insert_events(
    workspace: Workspace, events: Sequence[EventInput], now: dt.datetime
) -> list[Stored]:
    """Store the events not seen before (by message id); return what was stored."""
    if connection.vendor == "postgresql":
        return _insert_postgresql(workspace, events, now)
    return _insert_orm(workspace, events, now)


def _row(e: EventInput, now: dt.datetime) -> dict[str, object]:
    return {
        "contact_id": e.contact_id,
        "anonymous_id": e.anonymous_id[:255],
        "user_id": e.user_id[:255] if not e.contact_id else "",
        "name": e.name[:200],
        "properties": e.properties,
        "context": e.context,
        "occurred_at": e.occurred_at or now,
        "source": e.source,
        "revenue": e.revenue,
        "currency": (e.currency or "")[:3].upper(),
        "message_id": e.message_id,
    }


def _insert_postgresql(
    workspace: Workspace, events: Sequence[EventInput], now: dt.datetime
) -> list[Stored]:
    rows = json.dumps([_row(e, now) for e in events], default=str)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_EVENTS, [workspace.pk, now, now, now, rows])
        return cursor.fetchall()


def _insert_orm(
    workspace: Workspace, events: Sequence[EventInput], now: dt.datetime
) -> list[Stored]:
    message_ids = [e.message_id for e in events if e.message_id]
    seen = set(
        Event.objects.for_workspace(workspace)
        .filter(message_id__in=message_ids)
        .values_list("message_id", flat=True)
    )
    fresh = []
    for e in events:
        if e.message_id and e.message_id in seen:
            continue
        if e.message_id:
            seen.add(e.message_id)
        fresh.append(Event(workspace=workspace, received_at=now, **_row(e, now)))
    created = Event.objects.for_workspace(workspace).bulk_create(fresh, batch_size=1000)
    return [(e.pk, e.contact_id, e.occurred_at) for e in created]


def touch_activity(workspace: Workspace, stored: list[Stored]) -> None:
    """Move each contact's last_activity_at forward to its newest stored event."""
    latest: dict[int, dt.datetime] = {}
    for _, contact_id, at in stored:
        if contact_id and (contact_id not in latest or at > latest[contact_id]):
            latest[contact_id] = at
    if not latest:
        return
    if connection.vendor == "postgresql":
        # Sorted by id, so concurrent batches lock the same contacts in the same order.
        pairs = json.dumps([{"id": c, "at": latest[c].isoformat()} for c in sorted(latest)])
        with connection.cursor() as cursor:
            cursor.execute(_TOUCH_ACTIVITY, [pairs, workspace.pk])
        return
    contacts = Contact.objects.for_workspace(workspace)
    items = sorted(latest.items())
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        newest = Case(
            *(
                When(pk=pk, then=Greatest(Coalesce("last_activity_at", Value(at)), Value(at)))
                for pk, at in chunk
            ),
            output_field=DateTimeField(),
        )
        contacts.filter(Q(pk__in=[pk for pk, _ in chunk])).update(last_activity_at=newest)
