"""The rules a message meets before it goes out: suppression, subscription status,
frequency caps, quiet hours and the sunset rule.

Transactional mail (order confirmations, password resets, double opt-in) skips the
marketing rules (caps, quiet hours, sunset, unsubscribes) but never a hard bounce, a spam
complaint or an erasure: those addresses are never mailed again.

The facts the rules need (suppressions, recent sends, recent engagement) are loaded once
per batch by `load_facts`, so checking 500 messages costs a handful of queries. Caps count
marketing messages *sent* (sent_at set) in a rolling window: the last 24 hours for the
daily cap and the last 7 days for the weekly cap. Messages of the running batch count as
soon as they are accepted (`note_sent`); two workers sending to the same contact in the
same second may still both pass, which the caps tolerate.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db.models import Count, Q

from campaigns.models import Message, MessageStatus, SendingPolicy, TemplatePurpose
from contacts.models import Contact, SubscriptionStatus, Suppression, SuppressionReason, email_hash
from workspaces.models import Workspace
from workspaces.timezones import is_known_timezone

DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
# Suppressions that hold even for transactional mail.
HARD_SUPPRESSIONS = frozenset(
    {SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED, SuppressionReason.ERASED}
)
HARD_STATUSES = {
    SubscriptionStatus.BOUNCED: "the address bounced (hard bounce)",
    SubscriptionStatus.COMPLAINED: "the contact marked an email as spam",
}
MARKETING_STATUSES = {
    SubscriptionStatus.UNSUBSCRIBED: "the contact unsubscribed",
    SubscriptionStatus.PENDING: "the contact has not confirmed their subscription",
}
SUPPRESSION_REASONS = {
    SuppressionReason.BOUNCED: "the address is suppressed after a hard bounce",
    SuppressionReason.COMPLAINED: "the address is suppressed after a spam complaint",
    SuppressionReason.ERASED: "the address was erased on request",
    SuppressionReason.MANUAL: "the address is on the suppression list",
}

Blocked = tuple[str, str]  # (MessageStatus, reason)


def policy_for(workspace: Workspace) -> SendingPolicy:
    """The workspace's sending policy, or the defaults (unsaved) when it has none."""
    return SendingPolicy.objects.for_workspace(workspace).first() or SendingPolicy(
        workspace=workspace
    )


@dataclass
class Facts:
    """What the rules need to know about the recipients of one batch."""

    suppressed: dict[str, str] = field(default_factory=dict)  # email hash -> reason
    sent_day: Counter[int] = field(default_factory=Counter)  # contact id -> marketing sends
    sent_week: Counter[int] = field(default_factory=Counter)
    mailed_before_sunset: set[int] = field(default_factory=set)
    engaged_since_sunset: set[int] = field(default_factory=set)


def load_facts(
    workspace: Workspace,
    messages: Sequence[Message],
    policy: SendingPolicy,
    now: dt.datetime,
) -> Facts:
    facts = Facts()
    hashes = {email_hash(m.to_email) for m in messages}
    if hashes:
        facts.suppressed = dict(
            Suppression.objects.for_workspace(workspace)
            .filter(email_hash__in=hashes)
            .values_list("email_hash", "reason")
        )
    marketing = {
        m.contact_id for m in messages if m.contact_id and m.purpose == TemplatePurpose.MARKETING
    }
    if not marketing:
        return facts
    mine = Message.objects.for_workspace(workspace).filter(contact_id__in=marketing)
    if policy.daily_cap is not None or policy.weekly_cap is not None:
        rows = (
            mine.filter(purpose=TemplatePurpose.MARKETING, sent_at__gte=now - WEEK)
            .values("contact_id")
            .annotate(week=Count("id"), day=Count("id", filter=Q(sent_at__gte=now - DAY)))
        )
        for row in rows:
            facts.sent_week[row["contact_id"]] = row["week"]
            facts.sent_day[row["contact_id"]] = row["day"]
    if policy.sunset_days:
        cutoff = now - dt.timedelta(days=policy.sunset_days)
        facts.mailed_before_sunset = set(
            mine.filter(purpose=TemplatePurpose.MARKETING, sent_at__lt=cutoff)
            .values_list("contact_id", flat=True)
            .distinct()
        )
        facts.engaged_since_sunset = set(
            mine.filter(Q(opened_at__gte=cutoff) | Q(clicked_at__gte=cutoff))
            .values_list("contact_id", flat=True)
            .distinct()
        )
    return facts


def note_sent(facts: Facts, message: Message) -> None:
    """Count a message of the running batch against its contact's caps."""
    if message.contact_id and message.purpose == TemplatePurpose.MARKETING:
        facts.sent_day[message.contact_id] += 1
        facts.sent_week[message.contact_id] += 1


def blocked_reason(
    message: Message,
    contact: Contact | None,
    policy: SendingPolicy,
    now: dt.datetime,
    facts: Facts | None = None,
) -> Blocked | None:
    """Why `message` must not be sent at all: (MessageStatus.SUPPRESSED, reason) for
    suppressions and subscription status, (MessageStatus.SKIPPED, reason) for caps and the
    sunset rule; None when it may go."""
    if facts is None:
        facts = load_facts(message.workspace, [message], policy, now)
    suppression = facts.suppressed.get(email_hash(message.to_email))
    transactional = message.purpose == TemplatePurpose.TRANSACTIONAL
    if suppression in HARD_SUPPRESSIONS:
        return MessageStatus.SUPPRESSED, SUPPRESSION_REASONS[suppression]
    if contact is not None and contact.status in HARD_STATUSES:
        return MessageStatus.SUPPRESSED, HARD_STATUSES[contact.status]
    if transactional:
        return None
    if suppression:
        return MessageStatus.SUPPRESSED, SUPPRESSION_REASONS.get(suppression, "suppressed")
    if contact is None:
        return MessageStatus.SUPPRESSED, "the contact was deleted"
    if contact.status in MARKETING_STATUSES:
        return MessageStatus.SUPPRESSED, MARKETING_STATUSES[contact.status]
    if contact.marketing_paused_until and contact.marketing_paused_until > now:
        return MessageStatus.SKIPPED, "paused by the contact in the preference centre"
    if (
        policy.sunset_days
        and contact.pk in facts.mailed_before_sunset
        and contact.pk not in facts.engaged_since_sunset
    ):
        return (
            MessageStatus.SKIPPED,
            f"sunset: no open or click in {policy.sunset_days} days",
        )
    if policy.daily_cap is not None and facts.sent_day[contact.pk] >= policy.daily_cap:
        return MessageStatus.SKIPPED, f"frequency cap: {policy.daily_cap} a day"
    if policy.weekly_cap is not None and facts.sent_week[contact.pk] >= policy.weekly_cap:
        return MessageStatus.SKIPPED, f"frequency cap: {policy.weekly_cap} a week"
    return None


def contact_zone(contact: Contact | None, fallback: str) -> ZoneInfo:
    """The contact's time zone, else the workspace's, else UTC."""
    for name in (getattr(contact, "timezone", "") or "", fallback or ""):
        if name and is_known_timezone(name):
            return ZoneInfo(name)
    return ZoneInfo("UTC")


def in_quiet_hours(local: dt.time, start: dt.time, end: dt.time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window spans midnight


def defer_until(
    message: Message,
    contact: Contact | None,
    policy: SendingPolicy,
    now: dt.datetime,
    workspace_timezone: str = "UTC",
) -> dt.datetime | None:
    """When a marketing message that falls in the contact's quiet hours may go (the end of
    the quiet hours, in UTC); None when it may go now. Deferred, never dropped."""
    if message.purpose != TemplatePurpose.MARKETING:
        return None
    start, end = policy.quiet_start, policy.quiet_end
    if start is None or end is None:
        return None
    zone = contact_zone(contact, workspace_timezone)
    local = now.astimezone(zone)
    if not in_quiet_hours(local.time(), start, end):
        return None
    day = local.date()
    if start > end and local.time() >= start:  # before midnight: the window ends tomorrow
        day += DAY
    until = dt.datetime.combine(day, end, tzinfo=zone)
    return until.astimezone(dt.UTC)


def contacts_of(messages: Iterable[Message]) -> dict[int, Contact]:
    return {m.contact_id: m.contact for m in messages if m.contact_id and m.contact}
