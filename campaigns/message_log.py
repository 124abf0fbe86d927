"""Reads for the message log: the outbox list with its filters, one message with its events,
and each email on a contact's timeline (registered in CampaignsConfig.ready)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core import signing
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import dateformat

from contacts.models import Contact, normalise_email
from contacts.timeline import TimelineCursor, TimelineItem, older_than
from workspaces.models import Workspace

from .models import Message, MessageEvent, MessageSource, MessageStatus

PAGE_SIZE = 50
_CURSOR_SALT = "campaigns.message_log.cursor"
FAILED_STATUSES = (
    MessageStatus.BOUNCED,
    MessageStatus.COMPLAINED,
    MessageStatus.FAILED,
    MessageStatus.SUPPRESSED,
    MessageStatus.SKIPPED,
)
STATUS_BADGES = {
    MessageStatus.QUEUED: "status-queued",
    MessageStatus.SENDING: "status-queued",
    MessageStatus.SENT: "",
    MessageStatus.DELIVERED: "ok",
    MessageStatus.DEFERRED: "status-pending",
    MessageStatus.BOUNCED: "status-bounced",
    MessageStatus.COMPLAINED: "status-complained",
    MessageStatus.FAILED: "status-failed",
    MessageStatus.SUPPRESSED: "status-unsubscribed",
    MessageStatus.SKIPPED: "status-unsubscribed",
}


@dataclass(frozen=True)
class MessageFilters:
    source: str = ""
    source_id: str = ""
    status: str = ""
    q: str = ""  # an address, or part of one

    @property
    def active(self) -> bool:
        return bool(self.source or self.source_id or self.status or self.q)

    def as_params(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items() if value}


def filter_messages(workspace: Workspace, filters: MessageFilters) -> QuerySet[Message]:
    messages = Message.objects.for_workspace(workspace)
    if filters.source in MessageSource.values:
        messages = messages.filter(source=filters.source)
    if filters.source_id:
        messages = messages.filter(source_id=filters.source_id)
    if filters.status in MessageStatus.values:
        messages = messages.filter(status=filters.status)
    if filters.q:
        # A whole address is an exact match (what support looks up); a fragment searches.
        if "@" in filters.q and " " not in filters.q.strip():
            messages = messages.filter(to_email=normalise_email(filters.q))
        else:
            messages = messages.filter(to_email__icontains=filters.q.strip())
    return messages


@dataclass(frozen=True)
class ListCursor:
    created_at: dt.datetime
    pk: int

    def token(self) -> str:
        return signing.dumps([self.created_at.isoformat(), self.pk], salt=_CURSOR_SALT)

    @classmethod
    def from_token(cls, token: str) -> ListCursor | None:
        if not token:
            return None
        try:
            created_at, pk = signing.loads(token, salt=_CURSOR_SALT)
            return cls(dt.datetime.fromisoformat(created_at), int(pk))
        except (signing.BadSignature, ValueError, TypeError):
            return None


@dataclass
class MessagePage:
    messages: list[Message]
    next_cursor: ListCursor | None


def list_messages(
    workspace: Workspace,
    filters: MessageFilters,
    *,
    after: ListCursor | None = None,
    per_page: int = PAGE_SIZE,
) -> MessagePage:
    """Newest first, one query per page (keyset: no OFFSET, no COUNT)."""
    messages = filter_messages(workspace, filters)
    if after is not None:
        messages = messages.filter(
            Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, pk__lt=after.pk)
        )
    rows = list(
        messages.select_related("template")
        .defer("context", "template__blocks", "template__source")
        .order_by("-created_at", "-pk")[: per_page + 1]
    )
    page, more = rows[:per_page], len(rows) > per_page
    last = page[-1] if page else None
    return MessagePage(page, ListCursor(last.created_at, last.pk) if more and last else None)


def message_events(message: Message) -> list[MessageEvent]:
    return list(
        MessageEvent.objects.for_workspace(message.workspace_id)
        .filter(message=message)
        .order_by("occurred_at", "pk")
    )


# --- the contact timeline ------------------------------------------------------------------


def email_timeline(
    *, workspace: Workspace, contact: Contact, before: TimelineCursor | None, limit: int
) -> list[TimelineItem]:
    """Each email to the contact, at the time it was queued, with what became of it."""
    messages = (
        Message.objects.for_workspace(workspace)
        .filter(contact=contact)
        .filter(older_than(before, kind="email", time_field="created_at"))
        .select_related("template")
        .only(
            "pk",
            "public_id",
            "created_at",
            "subject",
            "status",
            "sent_at",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "failure_reason",
            "template__name",
        )
        .order_by("-created_at", "-pk")[:limit]
    )
    zone = _zone(workspace)
    return [
        TimelineItem(
            time=message.created_at,
            kind="email",
            title=f"Email: {_subject(message)}",
            detail=_email_detail(message, zone),
            ref=message.pk,
            url=reverse(
                "message_detail",
                kwargs={"workspace_slug": workspace.slug, "email_id": message.public_id},
            ),
        )
        for message in messages
    ]


def _subject(message: Message) -> str:
    if message.subject:
        return message.subject
    if message.template_id and message.template is not None:
        return message.template.name
    return "(no subject yet)"


def _email_detail(message: Message, zone: ZoneInfo) -> str:
    parts = [MessageStatus(message.status).label if message.status in MessageStatus.values else ""]
    for label, moment in (
        ("sent", message.sent_at),
        ("delivered", message.delivered_at),
        ("opened", message.opened_at),
        ("clicked", message.clicked_at),
    ):
        if moment:
            parts.append(f"{label} {dateformat.format(moment.astimezone(zone), 'j M, H:i')}")
    if message.status in FAILED_STATUSES and message.failure_reason:
        parts.append(message.failure_reason[:200])
    return " · ".join(p for p in parts if p)


def _zone(workspace: Workspace) -> ZoneInfo:
    try:
        return ZoneInfo(workspace.timezone or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")
