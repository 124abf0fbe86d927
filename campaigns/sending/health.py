"""Deliverability health: what became of the mail a workspace sent in the last 7 and 30 days,
in two aggregate queries (one over the messages, one over their events).

The messages counted are those handed to the ESP in the window (sent_at), and every rate is
about them:

    bounce rate       hard bounces / sent                green < 2 %, amber < 5 %, red
    complaint rate    spam complaints / delivered         green < 0.1 %, amber < 0.3 %, red
    unsubscribe rate  unsubscribes / delivered            green < 0.5 %, amber < 1 %, red
    opens, clicks     messages a person opened / clicked, and those only machines opened
                      (privacy proxies) or clicked (link scanners), kept apart

Google's sender guidelines ask bulk senders to keep the spam rate reported in Postmaster
Tools below 0.1 % and never to reach 0.3 %; ESPs review accounts whose hard bounces pass
about 5 %. Where the ESP reports no deliveries (SMTP, the sandbox), "delivered" falls back
to "sent" for the denominators.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from workspaces.models import Workspace

from ..models import Message, MessageEvent, MessageEventKind

WINDOWS = (7, 30)
GREEN, AMBER, RED, NONE = "green", "amber", "red", "none"
LEVEL_ORDER = {NONE: 0, GREEN: 1, AMBER: 2, RED: 3}
# (amber from, red from), as fractions
BOUNCE_LINES = (0.02, 0.05)
COMPLAINT_LINES = (0.001, 0.003)  # Google: below 0.1 % recommended, never 0.3 %
UNSUBSCRIBE_LINES = (0.005, 0.01)
SMALL_SAMPLE = 100  # below this many sent, one complaint swings a rate by a percent


@dataclass(frozen=True)
class Rate:
    count: int
    total: int
    level: str = NONE

    @property
    def value(self) -> float | None:
        return self.count / self.total if self.total else None

    @property
    def percent(self) -> float | None:
        return None if self.value is None else self.value * 100


def _rate(count: int, total: int, lines: tuple[float, float] | None = None) -> Rate:
    if not total or lines is None:
        return Rate(count, total)
    value = count / total
    amber, red = lines
    level = RED if value >= red else AMBER if value >= amber else GREEN
    return Rate(count, total, level)


@dataclass(frozen=True)
class WindowHealth:
    days: int
    sent: int
    delivered: int
    soft_bounces: int
    delivery: Rate
    bounces: Rate
    complaints: Rate
    unsubscribes: Rate
    human_opens: Rate
    machine_opens: Rate
    human_clicks: Rate
    machine_clicks: Rate

    @property
    def level(self) -> str:
        """The worst of the bounce and complaint levels (what ESPs and mailbox providers
        act on)."""
        return max((self.bounces.level, self.complaints.level), key=LEVEL_ORDER.__getitem__)

    @property
    def small_sample(self) -> bool:
        return 0 < self.sent < SMALL_SAMPLE


def deliverability(
    workspace: Workspace, *, now: dt.datetime | None = None, windows: tuple[int, ...] = WINDOWS
) -> list[WindowHealth]:
    now = now or timezone.now()
    since = {days: now - dt.timedelta(days=days) for days in windows}
    oldest = min(since.values())

    message_counts: dict[str, Any] = {}
    for days, start in since.items():
        in_window = Q(sent_at__gte=start)
        message_counts |= {
            f"sent_{days}": Count("pk", filter=in_window),
            f"delivered_{days}": Count("pk", filter=in_window & Q(delivered_at__isnull=False)),
            f"opened_{days}": Count("pk", filter=in_window & Q(opened_at__isnull=False)),
            f"clicked_{days}": Count("pk", filter=in_window & Q(clicked_at__isnull=False)),
        }
    sent = (
        Message.objects.for_workspace(workspace)
        .filter(sent_at__gte=oldest, sent_at__lte=now)
        .aggregate(**message_counts)
    )

    event_kinds = {
        "hard": Q(kind=MessageEventKind.BOUNCED),
        "soft": Q(kind=MessageEventKind.SOFT_BOUNCED),
        "complaints": Q(kind=MessageEventKind.COMPLAINED),
        "unsubscribes": Q(kind=MessageEventKind.UNSUBSCRIBED),
        "machine_opens": Q(kind=MessageEventKind.OPENED, machine=True),
        "machine_clicks": Q(kind=MessageEventKind.CLICKED, machine=True),
    }
    event_counts = {
        f"{name}_{days}": Count(
            "message", distinct=True, filter=condition & Q(message__sent_at__gte=start)
        )
        for days, start in since.items()
        for name, condition in event_kinds.items()
    }
    events = (
        MessageEvent.objects.for_workspace(workspace)
        .filter(message__sent_at__gte=oldest, message__sent_at__lte=now)
        .aggregate(**event_counts)
    )

    report = []
    for days in windows:
        total_sent = sent[f"sent_{days}"]
        delivered = sent[f"delivered_{days}"]
        reached = delivered or total_sent
        report.append(
            WindowHealth(
                days=days,
                sent=total_sent,
                delivered=delivered,
                soft_bounces=events[f"soft_{days}"],
                delivery=_rate(delivered, total_sent),
                bounces=_rate(events[f"hard_{days}"], total_sent, BOUNCE_LINES),
                complaints=_rate(events[f"complaints_{days}"], reached, COMPLAINT_LINES),
                unsubscribes=_rate(events[f"unsubscribes_{days}"], reached, UNSUBSCRIBE_LINES),
                human_opens=_rate(sent[f"opened_{days}"], reached),
                machine_opens=_rate(events[f"machine_opens_{days}"], reached),
                human_clicks=_rate(sent[f"clicked_{days}"], reached),
                machine_clicks=_rate(events[f"machine_clicks_{days}"], reached),
            )
        )
    return report
