"""The SQL compiler and the Python evaluator agree on every contact, for random rule trees
over random contacts with random events (hypothesis).

Each example stores a few contacts (inside a savepoint), then checks a handful of random
trees, nested groups included, plus one condition of every shape (each field with each
operator, each kind of event count, ...) with random values: Hypothesis alone keeps
drawing the same few shapes. The trees run as one query, one boolean column each, which
also proves that no condition is ever SQL NULL (a NONE group depends on that)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import (
    Contact,
    CustomField,
    Event,
    FieldType,
    Segment,
    SegmentKind,
    SegmentMembership,
    SubscriptionStatus,
    TopicPreference,
)
from contacts.segments import rules
from contacts.segments.compiler import compile_rules, matching_contacts
from contacts.segments.evaluator import evaluate, facts_for
from tests.factories import (
    LifecycleStageFactory,
    PersonaFactory,
    TagFactory,
    TopicFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db

# Instants near the edges that matter: the year end, a non-leap 28 February, midnight.
NOWS = [
    dt.datetime(2026, 12, 28, 11, 0, tzinfo=dt.UTC),
    dt.datetime(2027, 2, 27, 12, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 6, 15, 0, 30, tzinfo=dt.UTC),
]
EVENT_NAMES = ["order_placed", "page_viewed", *rules.ENGAGEMENT_EVENTS.values()]
CAMPAIGNS = ["0b6f2a55-6c59-4a7e-9a59-7f3c7e6c1a01", "0b6f2a55-6c59-4a7e-9a59-7f3c7e6c1a02"]
WORDS = ["ann", "an", "ANNA", "bob", "b", "zed", "nn", "%", "spring"]
ZONE = "Pacific/Auckland"
ATTRIBUTE_TYPES = {
    "size": FieldType.NUMBER,
    "tier": FieldType.CHOICE,
    "vip": FieldType.BOOLEAN,
    "renews": FieldType.DATE,
    "city": FieldType.TEXT,  # no custom field: free-form text
}


@pytest.fixture
def world(db):
    """The workspace and its vocabulary, shared by every example of one test run."""
    workspace = WorkspaceFactory(name="Property", slug="property", timezone=ZONE)
    for key in ("size", "tier", "vip", "renews"):
        CustomField.objects.create(
            workspace=workspace,
            key=key,
            label=key.title(),
            field_type=ATTRIBUTE_TYPES[key],
            choices=["Gold", "Silver"] if key == "tier" else [],
        )
    # Events of visitors not yet identified (no contact): they must never count, nor turn
    # a NOT IN (…) into NULL.
    Event.objects.bulk_create(
        Event(
            workspace=workspace,
            anonymous_id="visitor",
            name=name,
            occurred_at=now - dt.timedelta(hours=hours),
            received_at=now,
            properties={"total": 50, "coupon": "spring", "campaign_id": CAMPAIGNS[0]},
            revenue=Decimal("25.00"),
        )
        for name in EVENT_NAMES
        for now in NOWS
        for hours in (1, 2)
    )
    return {
        "workspace": workspace,
        "fields": {
            key: rules.FieldSpec(kind, key.title(), ("Gold", "Silver") if key == "tier" else ())
            for key, kind in ATTRIBUTE_TYPES.items()
            if key != "city"
        },
        "tags": [TagFactory(workspace=workspace) for _ in range(3)],
        "stages": [LifecycleStageFactory(workspace=workspace) for _ in range(2)],
        "personas": [PersonaFactory(workspace=workspace) for _ in range(2)],
        "topics": [
            TopicFactory(workspace=workspace, default_subscribed=True),
            TopicFactory(workspace=workspace, default_subscribed=False),
        ],
        "segment": Segment.objects.create(
            workspace=workspace, name="Hand-picked", kind=SegmentKind.STATIC
        ),
    }


# --- random contacts -----------------------------------------------------------------------

ABSENT = object()

offsets = st.integers(min_value=-48, max_value=420 * 24).map(lambda h: dt.timedelta(hours=h))
# Shifts that land on and next to the edges of the day windows used below.
DAYS = [1, 7, 30, 61, 365]
EDGE_SHIFTS = sorted({d + step for d in [0, *DAYS] for step in (-1, 0, 1)})
edge_shifts = st.sampled_from(EDGE_SHIFTS).flatmap(lambda d: st.sampled_from([d, -d]))


def local_day(now, shift):
    return rules.local_today(now, ZONE) + dt.timedelta(days=shift)


def _years_ago(day, years):
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def birthdays(now):
    return st.one_of(
        st.none(),
        st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2010, 12, 31)),
        st.sampled_from([dt.date(2000, 2, 29), dt.date(1990, 2, 28), dt.date(1991, 3, 1)]),
        st.builds(
            lambda shift, years: _years_ago(local_day(now, shift), years),
            edge_shifts,
            st.integers(0, 60),
        ),
    )


def attribute_values(now):
    return {
        "size": st.one_of(
            st.just(ABSENT),
            st.none(),
            st.integers(-5, 50),
            st.floats(-5, 50, allow_nan=False).map(lambda x: round(x, 1)),
            st.sampled_from(["12", True, ""]),
        ),
        "tier": st.sampled_from([ABSENT, "Gold", "Silver", "gold", "", None, 5]),
        "vip": st.sampled_from([ABSENT, True, False, None, "yes"]),
        "renews": st.one_of(
            st.sampled_from([ABSENT, "garbage", "", "2026-02-29", None]),
            st.builds(
                lambda shift, years: _years_ago(local_day(now, shift), years).isoformat(),
                edge_shifts,
                st.sampled_from([0, 0, 1, 7]),
            ),
        ),
        "city": st.sampled_from([ABSENT, "Paris", "paris", "", "Lyon", 75, "nnbob"]),
    }


event_properties = st.fixed_dictionaries(
    {},
    optional={
        "total": st.one_of(st.integers(0, 200), st.sampled_from([49.5, "120", None])),
        "coupon": st.sampled_from(["SPRING", "spring", "", "summer"]),
        "campaign_id": st.sampled_from(CAMPAIGNS),
        "journey_id": st.sampled_from(CAMPAIGNS),
        "human": st.sampled_from([True, False, None]),
    },
)
events = st.lists(
    st.tuples(
        st.sampled_from(["order_placed", "order_placed", *EVENT_NAMES]),
        offsets,
        event_properties,
        st.one_of(
            st.none(),
            st.integers(-5000, 30000).map(lambda cents: Decimal(cents) / 100),
        ),
    ),
    max_size=8,
)


def contact_lists(now):
    return st.lists(
        st.fixed_dictionaries(
            {
                "first_name": st.sampled_from(["", "Ann", "anna", "Bob", "bobby", "ANNE", "Zed"]),
                "last_name": st.sampled_from(["", "Nnamdi", "Spring"]),
                "external_id": st.sampled_from([None, "cus_ann", "cus_bob"]),
                "birthday": birthdays(now),
                "created": offsets,
                "active": st.one_of(st.none(), offsets),
                "attributes": st.fixed_dictionaries(attribute_values(now)),
                "status": st.sampled_from(SubscriptionStatus.values),
                "tags": st.sets(st.integers(0, 2)),
                "stage": st.sampled_from([None, 0, 1]),
                "persona": st.sampled_from([None, 0, 1]),
                "topics": st.tuples(*[st.sampled_from([None, True, False])] * 2),
                "membership": st.sampled_from([None, "current", "exited"]),
                "events": events,
            }
        ),
        min_size=2,
        max_size=6,
    )


def store(world, now, specs):
    workspace = world["workspace"]
    stored = []
    for number, spec in enumerate(specs):
        contact = Contact.objects.create(
            workspace=workspace,
            email=f"{spec['first_name'].lower() or 'x'}{number}@example.com",
            first_name=spec["first_name"],
            last_name=spec["last_name"],
            external_id=spec["external_id"] and f"{spec['external_id']}{number}",
            birthday=spec["birthday"],
            status=spec["status"],
            attributes={k: v for k, v in spec["attributes"].items() if v is not ABSENT},
            lifecycle_stage=_pick(world["stages"], spec["stage"]),
            persona=_pick(world["personas"], spec["persona"]),
            last_activity_at=now - spec["active"] if spec["active"] is not None else None,
        )
        contact.created_at = now - spec["created"]
        Contact.objects.for_workspace(workspace).filter(pk=contact.pk).update(
            created_at=contact.created_at
        )
        contact.tags.set([world["tags"][i] for i in spec["tags"]])
        TopicPreference.objects.bulk_create(
            TopicPreference(workspace=workspace, contact=contact, topic=topic, subscribed=choice)
            for topic, choice in zip(world["topics"], spec["topics"], strict=True)
            if choice is not None
        )
        if spec["membership"]:
            SegmentMembership.objects.create(
                workspace=workspace,
                segment=world["segment"],
                contact=contact,
                entered_at=now - dt.timedelta(days=3),
                exited_at=now if spec["membership"] == "exited" else None,
            )
        Event.objects.bulk_create(
            Event(
                workspace=workspace,
                contact=contact,
                name=name,
                occurred_at=now - offset,
                received_at=now,
                properties=properties,
                revenue=revenue,
            )
            for name, offset, properties, revenue in spec["events"]
        )
        stored.append(contact)
    return stored


def _pick(items, index):
    return None if index is None else items[index]


# --- random trees --------------------------------------------------------------------------

days = st.sampled_from(DAYS)


def iso_dates(now):
    return st.builds(
        lambda shift: local_day(now, shift).isoformat(),
        st.one_of(edge_shifts, st.integers(-420, 60)),
    )


def date_pairs(now):
    return st.lists(iso_dates(now), min_size=2, max_size=2).map(sorted)


numbers = st.one_of(st.integers(-5, 60), st.sampled_from([12.5, 49.5, 0]))
number_pairs = st.lists(numbers, min_size=2, max_size=2).map(sorted)
word_lists = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)


def _value_for(op, field_type, now):
    if op in rules.PRESENCE_OPS or op in rules.BOOLEAN_OPS:
        return st.none()
    if op in ("in", "not_in"):
        if field_type == FieldType.CHOICE:
            return st.lists(st.sampled_from(["Gold", "Silver"]), min_size=1, max_size=2)
        return word_lists
    if field_type == FieldType.CHOICE:
        return st.sampled_from(["Gold", "silver"])
    if field_type == FieldType.NUMBER:
        return number_pairs if op == "between" else numbers
    if field_type in (rules.DATE, rules.DATETIME):
        if op in ("before", "after"):
            return iso_dates(now)
        if op == "between":
            return date_pairs(now)
        if op == "anniversary_within_days":
            return st.sampled_from([0, *DAYS])
        return days
    return st.sampled_from(WORDS)


# The contact fields the generated contacts fill in (phone, locale… are always empty).
UNUSED_FIELDS = {"phone", "timezone", "locale", "source"}
FIELD_TYPE_OF = {
    **{name: kind for name, kind in rules.FIELD_TYPES.items() if name not in UNUSED_FIELDS},
    **{f"attributes.{key}": kind for key, kind in ATTRIBUTE_TYPES.items()},
}
# Every (field, operator) pair, drawn from one flat list so that each is as likely.
FIELD_OPS = [(name, op) for name, kind in FIELD_TYPE_OF.items() for op in rules.OPERATORS[kind]]


@st.composite
def field_conditions(draw, now):
    name, op = draw(st.sampled_from(FIELD_OPS))
    value = draw(_value_for(op, FIELD_TYPE_OF[name], now))
    return {"type": "field", "field": name, "op": op, "value": value}


where_filters = st.one_of(
    st.builds(
        lambda op, value: {"property": "total", "op": op, "value": value},
        st.sampled_from(["gt", "gte", "lt", "lte", "equals", "not_equals"]),
        numbers,
    ),
    st.builds(lambda value: {"property": "total", "op": "between", "value": value}, number_pairs),
    st.builds(
        lambda op, value: {"property": "coupon", "op": op, "value": value},
        st.sampled_from(["equals", "not_equals", "contains", "starts_with", "ends_with"]),
        st.sampled_from(["spring", "SPR", "ng", "summer"]),
    ),
    st.builds(
        lambda prop, op: {"property": prop, "op": op},
        st.sampled_from(["coupon", "human", "total"]),
        st.sampled_from(["is_set", "is_not_set", "is_true", "is_false"]),
    ),
    st.builds(
        lambda value: {"property": "campaign_id", "op": "in", "value": value},
        st.lists(st.sampled_from(CAMPAIGNS), min_size=1, max_size=2),
    ),
)


def windows(now):
    return st.one_of(
        st.just({"kind": "ever"}),
        st.builds(lambda d: {"kind": "last_days", "days": d}, days),
        st.builds(
            lambda pair: {"kind": "between", "start": pair[0], "end": pair[1]}, date_pairs(now)
        ),
    )


counts = st.one_of(
    st.none(),
    st.builds(lambda n: {"op": "at_least", "value": n}, st.integers(1, 3)),
    st.builds(
        lambda op, n: {"op": op, "value": n},
        st.sampled_from(["at_most", "exactly"]),
        st.integers(0, 3),
    ),
)


def event_conditions(now, performed=st.booleans(), count=counts):  # noqa: B008
    return st.builds(
        lambda name, performed, where, count, window: {
            "type": "event",
            "name": name,
            "performed": performed,
            "where": where,
            "count": count,
            "window": window,
        },
        st.sampled_from(EVENT_NAMES),
        performed,
        st.lists(where_filters, max_size=2),
        count,
        windows(now),
    )


def event_time_conditions(now, which=st.sampled_from(["first", "last"]), ops=None):  # noqa: B008
    ops = ops or ["before", "after", "within_last_days", "more_than_days_ago"]
    return st.builds(
        lambda name, which, op_value: {
            "type": "event_time",
            "name": name,
            "which": which,
            "op": op_value[0],
            "value": op_value[1],
        },
        st.sampled_from(EVENT_NAMES),
        which,
        st.sampled_from(ops).flatmap(
            lambda op: st.tuples(st.just(op), iso_dates(now) if op in ("before", "after") else days)
        ),
    )


def revenue_conditions(now, ops=("gt", "gte", "lt", "lte", "between")):
    return st.builds(
        lambda name, op_value, window: {
            "type": "revenue",
            "name": name,
            "op": op_value[0],
            "value": op_value[1],
            "window": window,
        },
        st.sampled_from([None, "order_placed"]),
        st.sampled_from(ops).flatmap(
            lambda op: st.tuples(st.just(op), number_pairs if op == "between" else numbers)
        ),
        windows(now),
    )


def engagement_conditions(
    action=st.sampled_from(list(rules.ENGAGEMENT_EVENTS)),  # noqa: B008
    performed=st.booleans(),  # noqa: B008
):
    return st.builds(
        lambda action, performed, scope, d: {
            "type": "engagement",
            "action": action,
            "performed": performed,
            "scope": scope,
            "days": d,
        },
        action,
        performed,
        st.one_of(
            st.just({"kind": "any"}),
            st.builds(
                lambda kind, campaign: {"kind": kind, "id": campaign},
                st.sampled_from(["campaign", "journey"]),
                st.sampled_from(CAMPAIGNS),
            ),
        ),
        days,
    )


def audience_shapes(world):
    """One strategy per (kind, operator) of the tag/stage/persona/topic/segment/status
    conditions."""
    references = [
        ("tag", ["has", "has_not"], world["tags"], False),
        ("stage", ["is", "is_not"], world["stages"], True),
        ("persona", ["is", "is_not"], world["personas"], True),
        ("topic", ["subscribed", "not_subscribed"], world["topics"], False),
        ("segment", ["member", "not_member"], [world["segment"]], False),
    ]
    shapes = []
    for kind, ops, items, nullable in references:
        values = [str(item.public_id) for item in items] + ([None] if nullable else [])
        for op in ops:
            shapes.append(
                st.builds(
                    lambda value, kind=kind, op=op: {"type": kind, "op": op, "value": value},
                    st.sampled_from(values),
                )
            )
    for op in ("is", "is_not"):
        shapes.append(
            st.builds(
                lambda value, op=op: {"type": "status", "op": op, "value": value},
                st.sampled_from(SubscriptionStatus.values),
            )
        )
    return shapes


EVERY_COUNT = [
    None,
    *({"op": "at_least", "value": n} for n in (1, 2, 3)),
    *({"op": op, "value": n} for op in ("at_most", "exactly") for n in (0, 1, 2, 3)),
]


def catalogue(world, now):
    """One strategy per shape of condition: every field with every operator, every kind of
    event count, first/last with every operator, and so on. Random trees alone keep
    drawing the same few shapes."""
    shapes = [
        st.builds(
            lambda value, name=name, op=op: {
                "type": "field",
                "field": name,
                "op": op,
                "value": value,
            },
            _value_for(op, FIELD_TYPE_OF[name], now),
        )
        for name, op in FIELD_OPS
    ]
    shapes += [event_conditions(now, st.just(True), st.just(count)) for count in EVERY_COUNT]
    shapes.append(event_conditions(now, st.just(False), st.none()))
    shapes += [
        event_time_conditions(now, st.just(which), [op])
        for which in ("first", "last")
        for op in rules.EVENT_TIME_OPS
    ]
    shapes += [revenue_conditions(now, [op]) for op in rules.REVENUE_OPS]
    shapes += [
        engagement_conditions(st.just(action), st.just(performed))
        for action in rules.ENGAGEMENT_EVENTS
        for performed in (True, False)
    ]
    return shapes + audience_shapes(world)


def trees(world, now):
    conditions = st.one_of(
        field_conditions(now),
        field_conditions(now),
        st.one_of(audience_shapes(world)),
        event_conditions(now),
        event_time_conditions(now),
        revenue_conditions(now),
        engagement_conditions(),
    )

    def node(depth):
        if depth >= 3:
            return conditions
        return st.one_of(conditions, conditions, st.deferred(lambda: group(depth + 1)))

    def group(depth):
        return st.builds(
            lambda match, children: {"type": "group", "match": match, "children": children},
            st.sampled_from(rules.MATCHES),
            st.lists(node(depth), min_size=1, max_size=3),
        )

    # Mostly one condition (a sharp test of each rule), often nested groups.
    return st.one_of(conditions, conditions, group(1), group(0))


# --- the property --------------------------------------------------------------------------


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_the_compiler_and_the_evaluator_agree_on_every_contact(world, data):
    now = data.draw(st.sampled_from(NOWS), label="now")
    strategies = strategies_for(world, now)
    specs = data.draw(strategies.contacts, label="contacts")
    try:
        with transaction.atomic():  # a savepoint: each example starts from the same world
            check_agreement(world, now, specs, strategies, data)
            raise RollBack
    except RollBack:
        pass


class RollBack(Exception):
    pass


@dataclass(frozen=True)
class Strategies:
    contacts: st.SearchStrategy
    trees: st.SearchStrategy
    catalogue: st.SearchStrategy


def strategies_for(world, now):
    """Built once per instant (building them per example costs more than the test)."""
    cache = world.setdefault("strategies", {})
    if now not in cache:
        shapes = catalogue(world, now)
        cache[now] = Strategies(
            contacts=contact_lists(now),
            trees=st.lists(trees(world, now), min_size=4, max_size=8),
            # Half the shapes per example (either half), to keep the run short.
            catalogue=st.sampled_from([shapes[::2], shapes[1::2]]).flatmap(
                lambda half: st.tuples(*half).map(list)
            ),
        )
    return cache[now]


def check_agreement(world, now, specs, strategies, data):
    workspace = world["workspace"]
    stored = store(world, now, specs)
    facts = {contact.pk: facts_for(workspace, contact) for contact in stored}
    drawn = data.draw(strategies.trees, label="trees")
    # And every shape of condition alone (random trees repeat themselves).
    drawn += data.draw(strategies.catalogue, label="every shape of condition")
    normalised = [rules.validate_rules(workspace, drawn[0])]
    normalised += [rules.normalise_tree(t, attribute_fields=world["fields"]) for t in drawn[1:]]

    # The way segments run it: one tree as a filter.
    selected = set(
        matching_contacts(workspace, normalised[0], now=now).values_list("pk", flat=True)
    )
    for contact in stored:
        expected = evaluate(normalised[0], facts[contact.pk], now=now)
        assert (contact.pk in selected) == expected, disagreement(facts[contact.pk], drawn[0])

    # Many trees at once, each as a column: also proves no condition is ever SQL NULL.
    columns = {
        f"tree_{number}": ExpressionWrapper(
            compile_rules(workspace, tree, now=now), output_field=BooleanField()
        )
        for number, tree in enumerate(normalised)
    }
    rows = (
        Contact.objects.for_workspace(workspace)
        .filter(pk__in=[contact.pk for contact in stored])
        .annotate(**columns)
        .values_list("pk", *columns)
    )
    for pk, *answers in rows:
        for tree, answer in zip(normalised, answers, strict=True):
            expected = evaluate(tree, facts[pk], now=now)
            assert answer is expected, disagreement(facts[pk], tree, answer)


def disagreement(facts, tree, answer=None):
    return f"SQL answered {answer} for {facts}\nrules: {tree}"
