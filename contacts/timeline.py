"""A contact's unified timeline: events, stage changes and consent records, newest first,
plus whatever later apps (campaign emails, journey steps) register.

A source is a callable `source(*, workspace, contact, before, limit)` returning up to `limit`
`TimelineItem`s that come strictly after `before` in timeline order (time, kind, ref, all
descending). `older_than()` builds that filter for a source backed by one model and one kind.
Apps register their sources in `AppConfig.ready()`:

    from contacts.timeline import register_timeline_source
    register_timeline_source(email_timeline)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.core import signing
from django.db.models import Q

from workspaces.models import Workspace

from .models import ConsentKind, ConsentRecord, Contact, Event, Source, StageChange

PAGE_SIZE = 25
_CURSOR_SALT = "contacts.timeline.cursor"


@dataclass(frozen=True)
class TimelineItem:
    time: dt.datetime
    kind: str  # short and stable: "event", "stage", "consent", "email", "journey", ...
    title: str
    detail: str = ""
    ref: int = 0  # the source's own row id: orders items that share a time
    url: str = ""

    @property
    def position(self) -> tuple[dt.datetime, str, int]:
        return (self.time, self.kind, self.ref)


@dataclass(frozen=True)
class TimelineCursor:
    """Where a page ended: the last item shown."""

    time: dt.datetime
    kind: str
    ref: int

    @property
    def position(self) -> tuple[dt.datetime, str, int]:
        return (self.time, self.kind, self.ref)

    def token(self) -> str:
        return signing.dumps([self.time.isoformat(), self.kind, self.ref], salt=_CURSOR_SALT)

    @classmethod
    def from_token(cls, token: str) -> TimelineCursor | None:
        """The cursor in a "load more" link, or None if it is missing or was tampered with."""
        if not token:
            return None
        try:
            time, kind, ref = signing.loads(token, salt=_CURSOR_SALT)
            return cls(dt.datetime.fromisoformat(time), str(kind), int(ref))
        except (signing.BadSignature, ValueError, TypeError):
            return None


class TimelineSource(Protocol):
    def __call__(
        self,
        *,
        workspace: Workspace,
        contact: Contact,
        before: TimelineCursor | None,
        limit: int,
    ) -> Iterable[TimelineItem]: ...


_sources: list[TimelineSource] = []


def register_timeline_source(source: TimelineSource) -> TimelineSource:
    """Add a source of timeline items (idempotent; usable as a decorator)."""
    if source not in _sources:
        _sources.append(source)
    return source


def timeline_sources() -> list[TimelineSource]:
    return list(_sources)


def older_than(
    before: TimelineCursor | None, *, kind: str, time_field: str, ref_field: str = "pk"
) -> Q:
    """The filter for rows of one kind that come after `before` in timeline order."""
    if before is None:
        return Q()
    if kind < before.kind:
        return Q(**{f"{time_field}__lte": before.time})
    if kind > before.kind:
        return Q(**{f"{time_field}__lt": before.time})
    return Q(**{f"{time_field}__lt": before.time}) | Q(
        **{time_field: before.time, f"{ref_field}__lt": before.ref}
    )


@dataclass
class TimelinePage:
    items: list[TimelineItem]
    next_cursor: TimelineCursor | None


def contact_timeline(
    *,
    workspace: Workspace,
    contact: Contact,
    before: TimelineCursor | None = None,
    limit: int = PAGE_SIZE,
) -> TimelinePage:
    """One page of the merged timeline (one query per source, whatever the page size)."""
    merged: list[TimelineItem] = []
    for source in _sources:
        items = source(workspace=workspace, contact=contact, before=before, limit=limit + 1)
        merged.extend(items)
    if before is not None:  # a source that returned too much must not repeat items
        merged = [item for item in merged if item.position < before.position]
    merged.sort(key=lambda item: item.position, reverse=True)
    page = merged[:limit]
    has_more = len(merged) > limit
    last = page[-1] if page else None
    cursor = TimelineCursor(last.time, last.kind, last.ref) if has_more and last else None
    return TimelinePage(page, cursor)


# --- the built-in sources ----------------------------------------------------------------


HOW = {
    Source.API: "via the API",
    Source.IMPORT: "by an import",
    Source.FORM: "through a signup form",
    Source.MANUAL: "by hand",
    Source.PREFERENCES: "in the preference centre",
    Source.SYSTEM: "by Mailpath",
}


def how(source: str) -> str:
    return HOW.get(source, "")


def humanise_event_name(name: str) -> str:
    """ "order_completed" → "Order completed"; Segment's "Order Completed" stays as is."""
    text = name.replace("_", " ").replace(".", " ").strip()
    return text[:1].upper() + text[1:] if text else "Event"


DETAIL_KEYS = ("title", "path", "url", "name", "product_id", "order_id", "plan", "form")


def _event_detail(event: Event) -> str:
    parts = []
    if event.revenue is not None:
        parts.append(f"{event.revenue} {event.currency}".strip())
    properties = event.properties if isinstance(event.properties, dict) else {}
    for key in DETAIL_KEYS:
        value = properties.get(key)
        if value not in (None, "") and len(parts) < 3:
            parts.append(f"{key}: {str(value)[:120]}")
    parts.append(how(event.source))
    return " · ".join(p for p in parts if p)


def event_items(
    *, workspace: Workspace, contact: Contact, before: TimelineCursor | None, limit: int
) -> list[TimelineItem]:
    events = (
        Event.objects.for_workspace(workspace)
        .filter(contact=contact)
        .filter(older_than(before, kind="event", time_field="occurred_at"))
        .only("id", "name", "properties", "occurred_at", "source", "revenue", "currency")
        .order_by("-occurred_at", "-id")[:limit]
    )
    return [
        TimelineItem(
            time=e.occurred_at,
            kind="event",
            title=humanise_event_name(e.name),
            detail=_event_detail(e),
            ref=e.pk,
        )
        for e in events
    ]


def stage_name(recorded: str, stage: Any) -> str:
    """The name the stage had at the time; older rows only point at the stage."""
    return recorded or (stage.name if stage else "")


def stage_items(
    *, workspace: Workspace, contact: Contact, before: TimelineCursor | None, limit: int
) -> list[TimelineItem]:
    changes = (
        StageChange.objects.for_workspace(workspace)
        .filter(contact=contact)
        .filter(older_than(before, kind="stage", time_field="changed_at"))
        .select_related("from_stage", "to_stage")
        .order_by("-changed_at", "-id")[:limit]
    )
    items = []
    for change in changes:
        to_name = stage_name(change.to_name, change.to_stage)
        from_name = stage_name(change.from_name, change.from_stage)
        title = f"Moved to {to_name}" if to_name else "Removed from stage"
        detail = f"from {from_name}" if from_name else "first stage"
        detail += f" · {how(change.source)}" if how(change.source) else ""
        items.append(
            TimelineItem(
                time=change.changed_at, kind="stage", title=title, detail=detail, ref=change.pk
            )
        )
    return items


def consent_title(record: ConsentRecord) -> str:
    label = ConsentKind(record.kind).label if record.kind in ConsentKind.values else record.kind
    if record.topic_id and record.topic:
        return f"{label}: {record.topic.name}"
    return label


def consent_items(
    *, workspace: Workspace, contact: Contact, before: TimelineCursor | None, limit: int
) -> list[TimelineItem]:
    records = (
        ConsentRecord.objects.for_workspace(workspace)
        .filter(contact=contact)
        .filter(older_than(before, kind="consent", time_field="occurred_at"))
        .select_related("topic")
        .order_by("-occurred_at", "-id")[:limit]
    )
    items = []
    for record in records:
        parts = [Source(record.method).label if record.method in Source.values else record.method]
        if record.source:
            parts.append(record.source)
        items.append(
            TimelineItem(
                time=record.occurred_at,
                kind="consent",
                title=consent_title(record),
                detail=" · ".join(parts),
                ref=record.pk,
            )
        )
    return items


BUILT_IN_SOURCES: tuple[Callable[..., Any], ...] = (event_items, stage_items, consent_items)
for _source in BUILT_IN_SOURCES:
    register_timeline_source(_source)
