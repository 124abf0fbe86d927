"""Demo audience for `manage.py seed_demo`: personas, topics, custom fields and a few
thousand contacts per workspace with 90 days of activity (page views, signups, carts,
orders with revenue) and their lifecycle-stage history. Deterministic: same data each time."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from workspaces.models import Workspace

from . import services
from .models import (
    Contact,
    CustomField,
    FieldType,
    LifecycleStage,
    Persona,
    Segment,
    SegmentSize,
    Source,
    StageChange,
    Topic,
)

CONTACTS_PER_WORKSPACE = 2500
DAYS = 90
FIRST_NAMES = [
    "Ava",
    "Ben",
    "Chloe",
    "Dan",
    "Ella",
    "Finn",
    "Grace",
    "Hugo",
    "Isla",
    "Jack",
    "Kara",
    "Leo",
    "Maya",
    "Noah",
    "Olive",
    "Paul",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
]
LAST_NAMES = [
    "Smith",
    "Jones",
    "Brown",
    "Taylor",
    "Wilson",
    "Evans",
    "Thomas",
    "Roberts",
    "Walker",
    "Wright",
    "Green",
    "Hall",
    "Wood",
    "Clarke",
    "Hughes",
    "Lewis",
]
CATALOGUES = {
    "acme-outdoor": {
        "personas": [
            (
                "Weekend hiker",
                "Walks with family at weekends.",
                "Comfortable, safe gear",
                "Unsure what to buy; price",
            ),
            (
                "Gear enthusiast",
                "Climbs and camps every month.",
                "The best kit, early",
                "Generic advice; slow delivery",
            ),
        ],
        "products": [
            ("Trail boots", 129),
            ("Rain jacket", 89),
            ("Day pack", 59),
            ("Camping stove", 45),
            ("Sleeping bag", 110),
            ("Head torch", 25),
        ],
        "interests": ["hiking", "camping", "climbing", "trail running"],
    },
    "bloom-bakery": {
        "personas": [
            (
                "Busy parent",
                "Orders treats for the family.",
                "Quick, reliable orders",
                "No time; allergies",
            ),
            (
                "Event planner",
                "Orders cakes for offices and parties.",
                "Big orders on time",
                "Last-minute changes",
            ),
        ],
        "products": [
            ("Sourdough loaf", 6),
            ("Birthday cake", 38),
            ("Croissant box", 14),
            ("Cupcake dozen", 24),
            ("Wedding cake tasting", 45),
        ],
        "interests": ["bread", "cakes", "gluten free", "workshops"],
        "vip_revenue": 60,  # a bakery's best customers spend less than a gear shop's
    },
}


def seed_audience(workspace: Workspace, seed: int = 7) -> int:
    """Fill one demo workspace; returns the number of contacts created."""
    rng = random.Random(f"{seed}-{workspace.slug}")
    catalogue = CATALOGUES.get(workspace.slug, CATALOGUES["acme-outdoor"])
    now = timezone.now()
    with transaction.atomic():
        services.ensure_default_stages(workspace=workspace)
        stages = list(LifecycleStage.objects.for_workspace(workspace))
        personas = _personas(workspace, catalogue)
        _topics_and_fields(workspace, catalogue)
        contacts = _contacts(workspace, rng, catalogue, now)
        _journeys(workspace, rng, contacts, stages, personas, catalogue, now)
        _segments(workspace, now, vip_revenue=catalogue.get("vip_revenue", 200))
    return len(contacts)


def _personas(workspace: Workspace, catalogue: dict) -> list[Persona]:
    return [
        Persona.objects.create(
            workspace=workspace, name=name, description=desc, goals=goals, pain_points=pains
        )
        for name, desc, goals, pains in catalogue["personas"]
    ]


def _topics_and_fields(workspace: Workspace, catalogue: dict) -> None:
    Topic.objects.create(workspace=workspace, name="Newsletter", description="Monthly news")
    Topic.objects.create(workspace=workspace, name="Offers", description="Discounts and sales")
    CustomField.objects.create(
        workspace=workspace,
        key="interest",
        label="Main interest",
        field_type=FieldType.CHOICE,
        choices=catalogue["interests"],
    )
    CustomField.objects.create(
        workspace=workspace, key="loyalty_points", label="Loyalty points", field_type="number"
    )


def _contacts(workspace, rng, catalogue, now) -> list[Contact]:  # type: ignore[no-untyped-def]
    rows = []
    for n in range(CONTACTS_PER_WORKSPACE):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        rows.append(
            {
                "email": f"{first}.{last}.{n}@example.com".lower(),
                "first_name": first,
                "last_name": last,
                "external_id": f"{workspace.slug[:4]}-{n:05d}",
                "timezone": workspace.timezone,
                "birthday": _birthday(n),
                "attributes": {
                    "interest": rng.choice(catalogue["interests"]),
                    "loyalty_points": rng.randrange(0, 500, 10),
                },
            }
        )
    consent = services.ConsentInput(
        method=Source.FORM, source="Website newsletter form", text_shown="Send me news and offers."
    )
    created: list[Contact] = []
    for start in range(0, len(rows), services.MAX_BULK_CONTACTS):
        results = services.upsert_contacts(
            workspace=workspace,
            rows=rows[start : start + services.MAX_BULK_CONTACTS],
            source=Source.FORM,
            consent=consent,
        )
        created.extend(r.contact for r in results if r.contact)
    for contact in created:
        contact.created_at = now - timedelta(days=rng.uniform(0, DAYS))
    Contact.objects.for_workspace(workspace).bulk_update(created, ["created_at"], batch_size=1000)
    return created


def _birthday(n: int) -> str | None:
    """Seven in ten contacts told us their birthday, spread over the year."""
    if n % 10 >= 7:
        return None
    return f"{1960 + n % 45}-{1 + (n * 7) % 12:02d}-{1 + (n * 13) % 28:02d}"


def _journeys(workspace, rng, contacts, stages, personas, catalogue, now) -> None:  # type: ignore[no-untyped-def]
    """Walk each contact some way down the funnel, leaving events and stage changes."""
    events: list[services.EventInput] = []
    changes: list[StageChange] = []
    tagged: dict[str, list[int]] = {"customer": [], "vip": [], "wholesale": []}
    for contact in contacts:
        contact.persona = rng.choice(personas)
        reached = _stages_reached(rng)
        moment = contact.created_at
        previous = None
        for depth in range(reached + 1):
            stage = stages[depth]
            moment = min(now, moment + timedelta(hours=rng.uniform(1, 24 * 10)))
            changes.append(
                StageChange(
                    workspace=workspace,
                    contact=contact,
                    from_stage=previous,
                    from_name=previous.name if previous else "",
                    to_stage=stage,
                    to_name=stage.name,
                    changed_at=moment,
                    source=Source.SYSTEM,
                )
            )
            events.extend(_events_for_stage(rng, contact, depth, moment, catalogue, now))
            previous = stage
        contact.lifecycle_stage = previous
        if reached >= 3:
            tagged["customer"].append(contact.pk)
        if reached == 4:
            tagged["vip"].append(contact.pk)
        if rng.random() < 0.03:
            tagged["wholesale"].append(contact.pk)
    StageChange.objects.for_workspace(workspace).bulk_create(changes, batch_size=2000)
    Contact.objects.for_workspace(workspace).bulk_update(
        contacts, ["persona", "lifecycle_stage"], batch_size=1000
    )
    for tag in services.get_or_create_tags(workspace=workspace, names=list(tagged)):
        services.add_tags(workspace=workspace, contact_ids=tagged[tag.name], tags=[tag])
    for start in range(0, len(events), 2000):
        services.record_events(workspace=workspace, events=events[start : start + 2000])


def _stages_reached(rng: random.Random) -> int:
    """0 = awareness only … 4 = advocacy; a funnel that narrows at each step."""
    depth = 0
    for keep in (0.55, 0.45, 0.6, 0.35):
        if rng.random() > keep:
            break
        depth += 1
    return depth


def _events_for_stage(rng, contact, depth, moment, catalogue, now) -> list[services.EventInput]:  # type: ignore[no-untyped-def]
    def event(name: str, offset_hours: float, **kwargs) -> services.EventInput:  # type: ignore[no-untyped-def]
        return services.EventInput(
            name=name,
            contact_id=contact.pk,
            occurred_at=min(now, moment + timedelta(hours=offset_hours)),  # nothing in the future
            source=Source.API,
            **kwargs,
        )

    product, price = rng.choice(catalogue["products"])
    item = {"name": product, "price": price, "quantity": 1}
    if depth == 0:
        return [event("signed_up", 0), event("page_viewed", 0.1, properties={"path": "/"})]
    if depth == 1:
        views = [
            event("page_viewed", h, properties={"path": f"/products/{product.lower()}"})
            for h in (0, 5, 30)
        ]
        if contact.pk % 3 == 0:  # a third fill a cart and leave without ordering
            views.append(event("cart_updated", 31, properties={"products": [item]}))
        return views
    if depth == 2:
        return [
            event("cart_updated", 0, properties={"products": [item]}),
            event("checkout_started", 0.2, properties={"products": [item]}),
            _order(event, item, price, 0.3),
        ]
    if depth == 3:
        return [_order(event, item, price * rng.choice((1, 2)), 24 * 20)]
    return [event("review_submitted", 24, properties={"rating": 5, "product": product})]


def _order(event, item, total, offset_hours) -> services.EventInput:  # type: ignore[no-untyped-def]
    return event(
        "order_placed",
        offset_hours,
        properties={"products": [item], "total": total, "currency": "GBP"},
        revenue=Decimal(total),
        currency="GBP",
    )


def demo_segments(vip_revenue: int) -> list[tuple[str, str, list[dict]]]:
    """The demo's segments: (name, description, the conditions all to be met)."""
    return [
        (
            "New subscribers",
            "Joined in the last two weeks and still subscribed: the welcome series.",
            [
                {"type": "field", "field": "created_at", "op": "within_last_days", "value": 14},
                {"type": "status", "op": "is", "value": "subscribed"},
            ],
        ),
        (
            "Cart abandoners",
            "Filled a cart this week but did not order.",
            [
                {
                    "type": "event",
                    "name": "cart_updated",
                    "performed": True,
                    "window": {"kind": "last_days", "days": 7},
                },
                {
                    "type": "event",
                    "name": "order_placed",
                    "performed": False,
                    "window": {"kind": "last_days", "days": 7},
                },
            ],
        ),
        (
            "Repeat buyers",
            "Ordered at least twice.",
            [
                {
                    "type": "event",
                    "name": "order_placed",
                    "performed": True,
                    "count": {"op": "at_least", "value": 2},
                    "window": {"kind": "ever"},
                }
            ],
        ),
        (
            "VIPs by revenue",
            f"Spent more than {vip_revenue} in all.",
            [{"type": "revenue", "name": "order_placed", "op": "gt", "value": vip_revenue}],
        ),
        (
            "Inactive 60 days",
            "Nothing from them for two months: a win-back campaign.",
            [
                {
                    "type": "field",
                    "field": "last_activity_at",
                    "op": "more_than_days_ago",
                    "value": 60,
                }
            ],
        ),
        (
            "Birthdays this month",
            "Birthday in the next 31 days.",
            [{"type": "field", "field": "birthday", "op": "anniversary_within_days", "value": 31}],
        ),
    ]


SIZE_HISTORY_DAYS = 21


def _segments(workspace: Workspace, now: datetime, vip_revenue: int = 200) -> list[Segment]:
    """The demo's useful segments, filled, with three weeks of daily sizes (each day's
    size is what the rules matched on that day)."""
    from .segments import membership
    from .segments.compiler import matching_contacts

    segments = [
        membership.create_segment(
            workspace=workspace,
            name=name,
            description=description,
            rules={"type": "group", "match": "all", "children": children},
        )
        for name, description, children in demo_segments(vip_revenue)
    ]
    zone = ZoneInfo(workspace.timezone)
    SegmentSize.objects.for_workspace(workspace).bulk_create(
        SegmentSize(
            workspace=workspace,
            segment=segment,
            day=timezone.localtime(now - timedelta(days=ago), zone).date(),
            member_count=matching_contacts(
                workspace, segment.rules, now=now - timedelta(days=ago)
            ).count(),
        )
        for segment in segments
        for ago in range(SIZE_HISTORY_DAYS, 0, -1)
    )
    membership.snapshot_sizes(workspace=workspace, now=now)
    return segments


def seed_demo_audiences(sender, workspaces: list[Workspace], **kwargs) -> None:  # type: ignore[no-untyped-def]
    for workspace in workspaces:
        seed_audience(workspace)
