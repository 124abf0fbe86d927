"""Reads for the segment pages and API: the builder's pickers (fields, tags, stages, …,
event names and their property keys), member lists, size history, and finding contacts
by id or email for static lists."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Max, QuerySet, Window
from django.utils import timezone

from workspaces.models import Workspace

from ..models import (
    Contact,
    CustomField,
    Event,
    LifecycleStage,
    Persona,
    Segment,
    SegmentMembership,
    SegmentSize,
    Tag,
    Topic,
    normalise_email,
)

EVENT_NAME_LIMIT = 50
PROPERTY_SAMPLE = 200
PROPERTY_KEY_LIMIT = 40
MEMBERS_PER_PAGE = 25
SIZE_HISTORY_DAYS = 90

# Distinct event names of a workspace, most recently seen first, without reading every
# event: a loose index scan over event_name_time (workspace, name, -occurred_at) that
# hops from one name to the next, then the newest occurrence of each from the same index.
_EVENT_NAMES_SQL = """
WITH RECURSIVE names(name, n) AS (
    (SELECT name, 1 FROM contacts_event WHERE workspace_id = %(ws)s ORDER BY name LIMIT 1)
    UNION ALL
    SELECT (SELECT e.name FROM contacts_event e
            WHERE e.workspace_id = %(ws)s AND e.name > names.name ORDER BY e.name LIMIT 1),
           n + 1
    FROM names WHERE names.name IS NOT NULL AND n < %(scan)s
)
SELECT names.name FROM names
WHERE names.name IS NOT NULL
ORDER BY (SELECT max(e.occurred_at) FROM contacts_event e
          WHERE e.workspace_id = %(ws)s AND e.name = names.name) DESC NULLS LAST, names.name
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Pickers:
    """What the builder offers to choose from."""

    custom_fields: list[CustomField]
    tags: list[Tag]
    stages: list[LifecycleStage]
    personas: list[Persona]
    topics: list[Topic]
    segments: list[Segment]


def pickers(workspace: Workspace, exclude: Segment | None = None) -> Pickers:
    segments = Segment.objects.for_workspace(workspace).order_by("name")
    if exclude is not None and exclude.pk:
        segments = segments.exclude(pk=exclude.pk)
    return Pickers(
        custom_fields=list(CustomField.objects.for_workspace(workspace).order_by("label")),
        tags=list(Tag.objects.for_workspace(workspace).order_by("name")),
        stages=list(LifecycleStage.objects.for_workspace(workspace)),
        personas=list(Persona.objects.for_workspace(workspace).order_by("name")),
        topics=list(Topic.objects.for_workspace(workspace).order_by("name")),
        segments=list(segments),
    )


def event_names(workspace: Workspace, limit: int = EVENT_NAME_LIMIT) -> list[str]:
    """The workspace's event names, most recently seen first (at most `limit`)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _EVENT_NAMES_SQL, {"ws": workspace.pk, "limit": limit, "scan": limit * 20}
            )
            return [row[0] for row in cursor.fetchall()]
    rows = (
        Event.objects.for_workspace(workspace)
        .values("name")
        .annotate(last=Max("occurred_at"))
        .order_by("-last", "name")[:limit]
    )
    return [row["name"] for row in rows]


def property_keys(workspace: Workspace, name: str) -> list[str]:
    """Property names seen on the most recent events of this name, commonest first."""
    if not name:
        return []
    recent = (
        Event.objects.for_workspace(workspace)
        .filter(name=name)
        .order_by("-occurred_at")
        .values_list("properties", flat=True)[:PROPERTY_SAMPLE]
    )
    counts: Counter[str] = Counter()
    for properties in recent:
        if isinstance(properties, dict):
            counts.update(key for key in properties if isinstance(key, str))
    return [key for key, _ in counts.most_common(PROPERTY_KEY_LIMIT)]


def count_and_sample(contacts: QuerySet[Contact], size: int) -> tuple[int, list[Contact]]:
    """How many contacts there are and the newest `size` of them, in one query (a window
    count rides along with the sample), so the builder's live preview reads the matching
    contacts once rather than twice."""
    sample = list(
        contacts.only("public_id", "email", "first_name", "last_name", "status").annotate(
            matching=Window(Count("pk"))
        )[:size]
    )
    return (sample[0].matching if sample else 0), sample


def current_members(workspace: Workspace, segment: Segment) -> QuerySet[SegmentMembership]:
    return SegmentMembership.objects.for_workspace(workspace).filter(
        segment=segment, exited_at__isnull=True
    )


@dataclass
class MemberPage:
    members: list[SegmentMembership]
    next_token: str | None


def member_page(
    workspace: Workspace, segment: Segment, after: str = "", per_page: int = MEMBERS_PER_PAGE
) -> MemberPage:
    """Current members, the latest to enter first, a keyset page at a time."""
    rows = current_members(workspace, segment).select_related("contact")
    cursor = _parse_token(after)
    if cursor is not None:
        entered_at, pk = cursor
        rows = rows.filter(entered_at__lte=entered_at).exclude(entered_at=entered_at, pk__gte=pk)
    members = list(rows.order_by("-entered_at", "-pk")[: per_page + 1])
    more = len(members) > per_page
    members = members[:per_page]
    last = members[-1] if members else None
    token = f"{last.entered_at.isoformat()}|{last.pk}" if more and last else None
    return MemberPage(members, token)


def _parse_token(token: str) -> tuple[dt.datetime, int] | None:
    when, _, pk = (token or "").partition("|")
    try:
        return dt.datetime.fromisoformat(when), int(pk)
    except ValueError:
        return None


def size_history(
    workspace: Workspace,
    segment: Segment,
    days: int = SIZE_HISTORY_DAYS,
    current: Segment | None = None,
) -> list[SegmentSize]:
    """The daily sizes, oldest first; with `current`, today's point is its size now."""
    rows = SegmentSize.objects.for_workspace(workspace).filter(segment=segment)
    sizes = list(reversed(rows.order_by("-day")[:days]))
    if current is not None:
        today = timezone.localdate(timezone.now(), ZoneInfo(workspace.timezone or "UTC"))
        if sizes and sizes[-1].day == today:
            sizes[-1].member_count = current.member_count
        else:
            sizes.append(SegmentSize(segment=segment, day=today, member_count=current.member_count))
    return sizes


@dataclass(frozen=True)
class Chart:
    """An inline SVG line chart's geometry."""

    width: int
    height: int
    points: str
    dots: list[tuple[float, float, SegmentSize]]
    low: int
    high: int
    first_day: dt.date | None
    last_day: dt.date | None


def size_chart(sizes: Sequence[SegmentSize], width: int = 640, height: int = 160) -> Chart:
    """Scale the daily sizes into an SVG viewBox (a little padding, y grows downwards)."""
    pad = 8
    if not sizes:
        return Chart(width, height, "", [], 0, 0, None, None)
    counts = [row.member_count for row in sizes]
    low, high = min(counts), max(counts)
    first, last = sizes[0].day, sizes[-1].day
    span_days = max((last - first).days, 1)
    span_count = max(high - low, 1)
    dots = []
    for row in sizes:
        x = pad + (width - 2 * pad) * ((row.day - first).days / span_days)
        if len(sizes) == 1:
            x = width / 2
        y = height - pad - (height - 2 * pad) * ((row.member_count - low) / span_count)
        if high == low:
            y = height / 2
        dots.append((round(x, 1), round(y, 1), row))
    points = " ".join(f"{x},{y}" for x, y, _ in dots)
    return Chart(width, height, points, dots, low, high, first, last)


def contacts_by_reference(
    workspace: Workspace, references: Iterable[Any]
) -> tuple[list[int], list[str]]:
    """Contacts named by public id or email address: (their primary keys, the references
    that match no contact of this workspace)."""
    ids: dict[str, uuid.UUID] = {}
    emails: dict[str, str] = {}
    for reference in references:
        text = str(reference).strip()
        if not text:
            continue
        try:
            ids[text] = uuid.UUID(text)
        except ValueError:
            emails[text] = normalise_email(text)
    contacts = Contact.objects.for_workspace(workspace)
    by_id = dict(contacts.filter(public_id__in=list(ids.values())).values_list("public_id", "pk"))
    by_email = dict(contacts.filter(email__in=list(emails.values())).values_list("email", "pk"))
    found = {text: by_id.get(public_id) for text, public_id in ids.items()}
    found.update({text: by_email.get(email) for text, email in emails.items()})
    missing = [text for text, pk in found.items() if pk is None]
    return sorted({pk for pk in found.values() if pk is not None}), missing
